/**
 * GET /v1/models: the loaded bundles with their manifests, verified sha256 per graph, the execution
 * provider in use and the batching settings.
 */
import { Type, type Static } from '@sinclair/typebox'

export const ModelInfoSchema = Type.Object({
  id: Type.String({ description: 'the model name to pass as `model`' }),
  object: Type.Literal('model'),
  default: Type.Boolean({ description: 'used when a request names no model' }),
  method: Type.Union([Type.Literal('clmae'), Type.Literal('mae')], { description: 'clmae: has the learned masking module (keep_scores graph); mae: random-mask baseline' }),
  has_decoder: Type.Boolean({ description: 'the bundle has a decoder: reconstructions work (a bundle imported from an encoder-only checkpoint answers 422 MODEL_NO_DECODER)' }),
  has_masking_module: Type.Boolean({ description: 'the bundle has the learned masking module (keep_scores graph): mask maps and learned masking work' }),
  quantization: Type.Union([
    Type.Object({
      method: Type.String({ description: 'dynamic (activations quantised per call) or static (calibrated QDQ)' }),
      weight_type: Type.String({ description: 'int8' }),
      per_channel: Type.Boolean(),
      source_model: Type.String({ description: 'the fp32 bundle this one was quantised from' }),
      source_encoder_sha256: Type.String({ description: 'that bundle\'s encoder sha256: classifiers pinned to it answer 409 CLASSIFIER_MODEL_MISMATCH here until re-embedded' })
    }),
    Type.Null()
  ], { description: 'null for an fp32 bundle; for an int8 variant (python -m clmae.quantize, manifest.quantization) what it was quantised from and how' }),
  manifest: Type.Object({}, { additionalProperties: true, description: 'the bundle\'s manifest.json (training/bundle-format/manifest.schema.json; format 1 for models trained here, 2 for imported released checkpoints)' }),
  sha256: Type.Record(Type.String(), Type.String(), { description: 'graph name -> sha256 hex of its ONNX file, verified at load' }),
  execution_provider: Type.String({ description: 'onnxruntime execution provider in use: cpu or cuda' }),
  batching: Type.Object({
    max_batch_size: Type.Integer(),
    max_wait_ms: Type.Number(),
    max_queue: Type.Integer(),
    queue_depth: Type.Record(Type.String(), Type.Integer(), { description: 'images waiting now, by graph' })
  })
})

export const ModelsResponseSchema = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(ModelInfoSchema)
})

export type ModelsResponse = Static<typeof ModelsResponseSchema>

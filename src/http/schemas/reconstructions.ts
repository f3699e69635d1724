/**
 * POST /v1/reconstructions: request and response. The descriptions define masking, the panels and the
 * per-patch error (they become the OpenAPI document).
 */
import { Type, type Static } from '@sinclair/typebox'
import { ModelField } from './common.js'
import { GraphSha256Schema, GridSchema, MaskRatioField, PreprocessingSchema } from './mask-maps.js'

export const ReconstructionsOptionsSchema = Type.Object({
  model: Type.Optional(ModelField),
  masking: Type.Optional(Type.Union([Type.Literal('learned'), Type.Literal('random'), Type.Literal('given')], {
    default: 'learned',
    description: 'learned: keep the K patches with the highest keep_score (clmae bundles only; 422 MODEL_NO_MASKING_MODULE otherwise). random: keep K patches chosen by a seeded PRNG (mulberry32(seed) noise, the K smallest kept, as MAE\'s random_masking). given: remove exactly masked_patches.'
  })),
  mask_ratio: Type.Optional(MaskRatioField),
  seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295, description: 'random masking only: uint32 seed; drawn when absent and echoed in the answer, so the same seed replays the same mask' })),
  masked_patches: Type.Optional(Type.Array(Type.Integer(), { maxItems: 4096, description: 'given masking only (at most 4096 indices, a 64 x 64 grid): indices t = row * cols + col of the patches to remove; each in [0, L) (400 MASK_PATCH_OUT_OF_RANGE), no repeats (400 MASK_PATCH_DUPLICATE), at least 1 and at most L - 1 of them (400 MASK_PATCH_COUNT)' }))
}, { additionalProperties: false })

export type ReconstructionsOptions = Static<typeof ReconstructionsOptionsSchema>

export const ReconstructionsJsonRequestSchema = Type.Composite([
  Type.Object({ input: Type.String({ minLength: 1, description: 'one image, base64 or a data URI (data:image/png;base64,...); multipart: one file part; or the raw image as the body with the options in the query string' }) }),
  ReconstructionsOptionsSchema
], { additionalProperties: false, examples: [{ input: 'data:image/png;base64,iVBORw0KGgo...', masking: 'random', mask_ratio: 0.75, seed: 42 }] })

export const ReconstructionsMultipartSchema = Type.Object({
  input: Type.String({ format: 'binary', description: 'one file part' }),
  model: Type.Optional(Type.String()),
  masking: Type.Optional(Type.String()),
  mask_ratio: Type.Optional(Type.String()),
  seed: Type.Optional(Type.String()),
  masked_patches: Type.Optional(Type.String({ description: 'repeat the field once per index' }))
}, { description: 'the image as one file part; options as text fields with the JSON names' })

const PanelString = (what: string): ReturnType<typeof Type.String> => Type.String({ description: `base64 PNG: ${what}` })

export const ReconstructionsResponseSchema = Type.Object({
  model: Type.String(),
  model_sha256: Type.String({ description: 'sha256 of the decoder graph that produced the reconstruction (all graphs in graph_sha256)' }),
  graph_sha256: GraphSha256Schema,
  masking: Type.Union([Type.Literal('learned'), Type.Literal('random'), Type.Literal('given')]),
  mask_ratio: Type.Number({ description: 'share of patches removed: the requested ratio (learned, random) or (L - K) / L (given)' }),
  num_kept: Type.Integer({ description: 'K, patches the encoder saw' }),
  seed: Type.Optional(Type.Integer({ description: 'random masking: the seed used (the one sent, or the one drawn)' })),
  grid: GridSchema,
  patch_size: Type.Integer(),
  mask: Type.Array(Type.Array(Type.Integer({ minimum: 0, maximum: 1 })), { description: 'rows x cols, 1 = removed, 0 = kept' }),
  masked_patches: Type.Array(Type.Integer(), { description: 'indices of the removed patches, ascending' }),
  panels: Type.Object({
    original: PanelString('the model\'s input (the centre crop after resizing), before normalisation'),
    masked: PanelString('the input with the removed patches grey (128)'),
    reconstruction: PanelString('the decoder\'s prediction for every patch, as pixels'),
    reconstruction_visible: PanelString('the reconstruction with the kept (visible) patches replaced by the input')
  }, { description: 'the MAE demo\'s four panels, each the model\'s input resolution enlarged by nearest neighbour to at least 256 px' }),
  patch_error: Type.Array(Type.Array(Type.Union([Type.Number(), Type.Null()])), {
    description: 'rows x cols: for each removed patch, the mean squared error over its p*p*3 values between the prediction and the training target (the normalised input patch; with norm_pix_loss standardised per patch as in training: (x - mean) / sqrt(var_unbiased + eps)); null for kept patches. The MAE loss is the mean of these.'
  }),
  mean_patch_error: Type.Number({ description: 'mean of patch_error over the removed patches' }),
  norm_pix: Type.Object({
    used: Type.Boolean({ description: 'the bundle was trained with norm_pix_loss: the decoder predicts per-patch standardised values' }),
    uses_true_patch_statistics: Type.Boolean({ description: 'true when used: the reconstruction panels turn predictions into pixels with each patch\'s true mean and variance, taken from the original input (also for removed patches, which the decoder never saw), as the MAE demo does' })
  }),
  preprocessing: PreprocessingSchema
}, {
  description: 'The encoder sees the K kept patches (ids_keep; K is any value from 1 to L - 1), the decoder predicts all L patches (ids_restore). With `Accept: image/png` the answer is instead one PNG: the four panels side by side (original, masked, reconstruction, reconstruction_visible) with 4 px white gaps, and the headers x-mask-ratio, x-num-kept, x-mean-patch-error and, for random masking, x-seed.'
})

export type ReconstructionsResponse = Static<typeof ReconstructionsResponseSchema>

/**
 * The bundle manifest (training/bundle-format/manifest.schema.json) as TypeScript types, and its validation
 * with ajv against that committed schema, so the service and training/ share one contract.
 * Format 1: a model trained here (clmae.export): every bundle has a decoder, `config` names its architecture.
 * Format 2: a released checkpoint imported by clmae.import_checkpoint: the decoder and keep_scores graphs are
 * optional, `source` and `architecture` (each value with where it came from) replace `config`, and `training`
 * is optional. Both carry the same fields the service reads (dims, grid, eval_transform, ...).
 * Mask convention: mask = 1 means the patch is removed; keep_score in (0, 1), high = keep.
 */
import { readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import type { ValidateFunction } from 'ajv'
import { packageUrl } from '../paths.js'

export const MANIFEST_SCHEMA_PATH = packageUrl('training/bundle-format/manifest.schema.json')

export type GraphName = 'encoder' | 'decoder' | 'keep_scores'

export interface TensorSpec {
  name: string
  dtype: 'float32' | 'int64'
  /** integers are fixed; strings name dynamic axes ('N', 'K', '1+K') */
  shape: Array<number | string>
}

/** A file inside the bundle directory, with the size and sha256 it must have. */
export interface FileSpec {
  file: string
  sha256: string
  bytes: number
}

export interface GraphSpec extends FileSpec {
  inputs: TensorSpec[]
  outputs: TensorSpec[]
  /** the weights of a graph past protobuf's 2 GB (e.g. ViT-H), beside the .onnx file */
  external_data?: FileSpec[]
}

export interface EvalTransform {
  color_mode: 'RGB'
  resize_shorter_side: number
  center_crop: number
  interpolation: 'bicubic' | 'bilinear'
  antialias: boolean
  mean: [number, number, number]
  std: [number, number, number]
}

/**
 * An int8 variant of another bundle (python -m clmae.quantize). Its graphs have their own sha256 values, so a
 * classifier pinned to the source's encoder answers 409 CLASSIFIER_MODEL_MISMATCH on it until re-embedded.
 */
export interface Quantization {
  method: 'dynamic' | 'static'
  weight_type: 'int8'
  activation_type: 'uint8'
  per_channel: boolean
  reduce_range: boolean
  quantized_ops?: string[]
  /** per graph: op counts after onnxruntime's fusions and after quantisation, or { quantized: false } */
  graphs: Record<string, Record<string, unknown>>
  tools: { onnxruntime: string, onnx: string }
  calibration?: { data?: string, images?: number, method?: string, format?: string }
  /** the fp32 bundle it was quantised from */
  source: { name: string, manifest_sha256: string, sha256: Record<string, string> }
}

interface ManifestCommon {
  name: string
  method: 'clmae' | 'mae'
  image_size: number
  patch_size: number
  /** [rows, cols]; token t = row * cols + col */
  grid: [number, number]
  /** L */
  num_patches: number
  mask_ratio: number
  norm_pix_eps: number
  eval_transform: EvalTransform
  opset: number
  created_at: string
  /** present on an int8 variant (python -m clmae.quantize) */
  quantization?: Quantization
}

export interface ManifestV1 extends ManifestCommon {
  format_version: 1
  config: string
  dims: {
    embed_dim: number
    depth: number
    num_heads: number
    decoder_embed_dim: number
    decoder_depth: number
    decoder_num_heads: number
    patch_dim: number
    masking_depth: number | null
    masking_num_heads: number | null
  }
  norm_pix_loss: boolean
  graphs: { encoder: GraphSpec, decoder: GraphSpec, keep_scores?: GraphSpec }
  training: Record<string, unknown>
}

/** One value of an imported architecture and where it came from (a checkpoint key, args, a default, a flag). */
export interface Decided {
  value: unknown
  from: string
}

export interface ManifestV2 extends ManifestCommon {
  format_version: 2
  source: { format: 'mae' | 'timm' | 'clmae', file: string, sha256: string, bytes?: number, layout?: string, epoch?: number, args?: Record<string, unknown> }
  architecture: Record<string, Decided>
  dims: {
    embed_dim: number
    depth: number
    num_heads: number
    /** null: no decoder */
    decoder_embed_dim: number | null
    decoder_depth: number | null
    decoder_num_heads: number | null
    patch_dim: number
    masking_depth: number | null
    masking_num_heads: number | null
  }
  /** null when the bundle has no decoder */
  norm_pix_loss: boolean | null
  graphs: { encoder: GraphSpec, decoder?: GraphSpec, keep_scores?: GraphSpec }
  training?: Record<string, unknown>
}

export type Manifest = ManifestV1 | ManifestV2

/** What the bundle's architecture is called: the config name (format 1), or the imported file (format 2). */
export function architectureName (manifest: Manifest): string {
  return manifest.format_version === 1 ? manifest.config : `${manifest.source.format}:${manifest.source.file}`
}

let validator: ValidateFunction | undefined

function getValidator (): ValidateFunction {
  if (validator === undefined) {
    const schema = JSON.parse(readFileSync(MANIFEST_SCHEMA_PATH, 'utf8'))
    const ajv = new Ajv2020({ allErrors: true, strict: false })
    const addFormats = addFormatsModule as unknown as (a: Ajv2020) => void
    addFormats(ajv)
    validator = ajv.compile(schema)
  }
  return validator
}

/** Returns the list of schema violations (empty when valid), each as "path: message". */
export function manifestErrors (value: unknown): string[] {
  const validate = getValidator()
  if (validate(value)) return []
  return (validate.errors ?? []).map((e) => `${e.instancePath === '' ? '(root)' : e.instancePath}: ${e.message ?? 'invalid'}`)
}

/**
 * The bundle manifest (training/bundle-format/manifest.schema.json, format_version 1) as TypeScript types,
 * and its validation with ajv against that committed schema, so the service and training/ share one contract.
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

export interface GraphSpec {
  file: string
  sha256: string
  bytes: number
  inputs: TensorSpec[]
  outputs: TensorSpec[]
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

export interface Manifest {
  format_version: 1
  name: string
  method: 'clmae' | 'mae'
  config: string
  image_size: number
  patch_size: number
  /** [rows, cols]; token t = row * cols + col */
  grid: [number, number]
  /** L */
  num_patches: number
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
  mask_ratio: number
  norm_pix_loss: boolean
  norm_pix_eps: number
  eval_transform: EvalTransform
  opset: number
  graphs: { encoder: GraphSpec, decoder: GraphSpec, keep_scores?: GraphSpec }
  training: Record<string, unknown>
  created_at: string
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

/**
 * Shared by the feature parity tests: load a real bundle from models/ (onnxruntime on CPU) and the reference
 * outputs that training wrote for it (test/fixtures/reference/<bundle>.json, `python -m clmae.tools.write_reference`),
 * matched by the graphs' sha256: a reference for other graph files is refused, not compared.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { loadConfig } from '../../src/config.js'
import { ModelRegistry, type LoadedModel } from '../../src/bundles/model-registry.js'

export interface F32 { dtype: 'float32', shape: number[], base64: string }

export interface Reference {
  bundle: string
  tolerance: number
  graph_sha256: Record<string, string>
  pixels: Array<{ shape: number[], base64: string }>
  input: F32
  keep_scores?: number[][]
  reconstructions: {
    learned?: { mask_ratio: number, num_kept: number, ids_keep: number[][], ids_restore: number[][], mask: number[][], pred: F32 }
    given: { masked_patches: number[][], num_kept: number, ids_keep: number[][], ids_restore: number[][], mask: number[][], pred: F32 }
  }
}

export const MODELS_DIR = new URL('../../models/', import.meta.url).pathname
const REFERENCE_DIR = new URL('../fixtures/reference/', import.meta.url)

export function decodeF32 (t: F32): Float32Array {
  const bytes = Buffer.from(t.base64, 'base64')
  const out = new Float32Array(bytes.length / 4)
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4)
  return out
}

/** The reference whose graph sha256s equal the model's; throws naming what to re-run otherwise. */
export function referenceFor (model: LoadedModel): Reference {
  const candidates = readdirSync(REFERENCE_DIR).filter((f) => f.endsWith('.json'))
  for (const file of candidates) {
    const ref = JSON.parse(readFileSync(new URL(file, REFERENCE_DIR), 'utf8')) as Reference
    const graphs = Object.keys(model.sha256)
    if (graphs.length === Object.keys(ref.graph_sha256).length && graphs.every((g) => ref.graph_sha256[g] === model.sha256[g as keyof typeof model.sha256])) return ref
  }
  throw new Error(`no reference in test/fixtures/reference/ matches the sha256s of models/${model.id} (${JSON.stringify(model.sha256)}); ` +
    `re-run: cd training && ../.venv/bin/python -m clmae.tools.write_reference --bundle ../models/${model.id} --out ../test/fixtures/reference/${model.id}.json`)
}

export async function loadRegistry (): Promise<ModelRegistry> {
  const config = loadConfig({ env: {}, overrides: { modelsDir: MODELS_DIR, ortIntraOpThreads: 1, maxWaitMs: 0 } })
  const quiet = { info () {}, warn () {}, error () {} }
  return await ModelRegistry.load(config, { logger: quiet })
}

/** max |a - b| */
export function maxAbsDiff (a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`)
  let max = 0
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]))
  return max
}

/**
 * Learned mask maps: the masking module's keep_score for every patch of one image, the binary mask a mask
 * ratio gives (top-K kept, 1 = removed), summary figures and, on request, a heatmap PNG.
 * No Fastify here (style rule 8); the route shapes the answer.
 */
import type { LoadedModel } from '../bundles/model-registry.js'
import { ApiError } from '../errors.js'
import type { TransformedImage } from '../imaging/eval-transform.js'
import { blend, displayScale, encodePng, enlarge, heatmapImage, OVERLAY_ALPHA, type RgbImage } from '../imaging/render.js'
import type { RunOptions } from '../inference/batcher.js'
import { float32Tensor } from '../inference/tensor.js'
import { checkedKeptCount, selectTopk } from './selection.js'

export type HeatmapKind = 'none' | 'png' | 'overlay'

export interface MaskMapOptions {
  /** default: the bundle's training mask ratio */
  maskRatio?: number
  heatmap: HeatmapKind
}

export interface KeepScoreSummary {
  mean: number
  /** population standard deviation over the L patches */
  std: number
  min: number
  max: number
  /** Shannon entropy (bits) of q_t = keep_score_t / sum(keep_score); log2(L) when all scores are equal */
  entropy_bits: number
  /** share of sum(keep_score) held by the ceil(L / 10) highest-scoring patches */
  top_decile_share: number
}

export interface MaskMapResult {
  rows: number
  cols: number
  patchSize: number
  maskRatio: number
  numKept: number
  /** (L) in (0, 1), high = keep, grid order */
  keepScores: Float32Array
  /** (L) 1 = removed */
  mask: Uint8Array
  summary: KeepScoreSummary
  heatmapPng?: Buffer
  queueMs: number
  inferenceMs: number
}

/** The model's keep_scores graph on ready tensors: pixels (N, 3, S, S) -> N arrays of L scores. */
export async function keepScoresOf (model: LoadedModel, pixels: Float32Array, count: number, runOptions: RunOptions = {}): Promise<{ scores: Float32Array[], queueMs: number, inferenceMs: number }> {
  if (!model.hasGraph('keep_scores')) {
    throw new ApiError('MODEL_NO_MASKING_MODULE', `model ${model.id} (method ${model.manifest.method}) has no learned masking module; use a clmae bundle`)
  }
  const S = model.manifest.image_size
  const L = model.manifest.num_patches
  const { outputs, queueMs, inferenceMs } = await model.run('keep_scores', { images: float32Tensor(pixels, [count, 3, S, S]) }, runOptions)
  const out = outputs.keep_scores // (N, L)
  if (out === undefined || out.dims[0] !== count || out.dims[1] !== L) {
    throw new Error(`keep_scores graph of ${model.id} returned ${out === undefined ? 'nothing' : `[${out.dims.join(', ')}]`}, expected [${count}, ${L}]. This is a bug.`)
  }
  const data = out.data as Float32Array
  return { scores: Array.from({ length: count }, (_, n) => data.slice(n * L, (n + 1) * L)), queueMs, inferenceMs }
}

/** Summary figures of one image's keep scores (L). */
export function summarizeKeepScores (scores: Float32Array): KeepScoreSummary {
  const L = scores.length
  let sum = 0
  let min = Infinity
  let max = -Infinity
  for (const s of scores) {
    sum += s
    min = Math.min(min, s)
    max = Math.max(max, s)
  }
  const mean = sum / L
  let sq = 0
  let entropy = 0
  for (const s of scores) {
    sq += (s - mean) * (s - mean)
    const q = s / sum
    if (q > 0) entropy -= q * Math.log2(q)
  }
  const top = Math.ceil(L / 10)
  const sorted = Float64Array.from(scores).sort().reverse()
  let topSum = 0
  for (let i = 0; i < top; i++) topSum += sorted[i]
  return { mean, std: Math.sqrt(sq / L), min, max, entropy_bits: entropy, top_decile_share: sum > 0 ? topSum / sum : 0 }
}

/**
 * The heatmap of keep scores (fixed viridis scale, 0 -> #440154, 1 -> #fde725), one flat cell per patch,
 * enlarged to the display size; `overlay` blends it (alpha OVERLAY_ALPHA) over the model's input crop.
 */
export async function renderKeepScoreHeatmap (scores: Float32Array, model: LoadedModel, image: TransformedImage, kind: Exclude<HeatmapKind, 'none'>): Promise<Buffer> {
  const [rows, cols] = model.manifest.grid
  const p = model.manifest.patch_size
  const scale = displayScale(image.size)
  const heat = heatmapImage(scores, rows, cols, p * scale)
  if (kind === 'png') return await encodePng(heat)
  const base: RgbImage = enlarge({ width: image.size, height: image.size, data: image.crop }, scale)
  return await encodePng(blend(base, heat, OVERLAY_ALPHA))
}

/** keep scores -> grid, top-K mask, summary and the optional heatmap for one preprocessed image. */
export async function computeMaskMap (model: LoadedModel, image: TransformedImage, options: MaskMapOptions, runOptions: RunOptions = {}): Promise<MaskMapResult> {
  const L = model.manifest.num_patches
  const maskRatio = options.maskRatio ?? model.manifest.mask_ratio
  const K = checkedKeptCount(L, maskRatio) // before inference: a bad ratio costs nothing
  const { scores, queueMs, inferenceMs } = await keepScoresOf(model, image.pixels, 1, runOptions)
  const keepScores = scores[0]
  const [rows, cols] = model.manifest.grid
  return {
    rows,
    cols,
    patchSize: model.manifest.patch_size,
    maskRatio,
    numKept: K,
    keepScores,
    mask: selectTopk(keepScores, K).mask,
    summary: summarizeKeepScores(keepScores),
    heatmapPng: options.heatmap === 'none' ? undefined : await renderKeepScoreHeatmap(keepScores, model, image, options.heatmap),
    queueMs,
    inferenceMs
  }
}

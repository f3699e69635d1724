/**
 * Image embeddings: decode + eval transform every image, run the encoder on the full sequence
 * (ids_keep = 0..L-1 for every image), pool and optionally L2-normalise. No Fastify here (style rule 8).
 *
 * latent (N, 1+L, D) is the encoder output after its final LayerNorm: token 0 is cls, tokens 1..L are the
 * patches in grid order. pooling 'mean' averages the L patch tokens (MAE's global_pool), 'cls' takes token 0.
 */
import type { LoadedModel } from '../bundles/model-registry.js'
import { inspectImage, type ImageLimits } from '../imaging/decode.js'
import { requestEvalTransform } from '../imaging/eval-transform.js'
import type { RunOptions } from '../inference/batcher.js'
import { float32Tensor, int64Tensor } from '../inference/tensor.js'
import type { Metrics } from '../metrics.js'
import { mapItemsAsync } from '../item-errors.js'

export type Pooling = 'cls' | 'mean'

export interface EmbedOptions {
  pooling: Pooling
  normalize: boolean
  includePatchTokens: boolean
}

export interface EmbedResult {
  /** N vectors of D values */
  embeddings: Float32Array[]
  /** N arrays of L * D values (row-major, token t = row * cols + col), when asked for */
  patchTokens?: Float32Array[]
  /** sum of width x height of the decoded inputs */
  pixels: number
  queueMs: number
  inferenceMs: number
}

/**
 * Decodes and preprocesses images in parallel: (N, 3, S, S) float32 and the input pixel count. Every
 * image is tried; failures come back together as one ApiError with per-image `errors`.
 */
export async function preprocessImages (model: LoadedModel, images: Buffer[], limits: ImageLimits, metrics?: Metrics, run: RunOptions = {}): Promise<{ pixels: Float32Array, count: number, inputPixels: number }> {
  const sources = await mapItemsAsync(images, async (bytes) => await inspectImage(bytes, limits))
  const transformed = await mapItemsAsync(sources, requestEvalTransform(model.manifest.eval_transform, metrics, run.signal, run.deadline))
  const S = model.manifest.eval_transform.center_crop
  const plane = 3 * S * S
  const pixels = new Float32Array(images.length * plane) // (N, 3, S, S)
  transformed.forEach((t, n) => pixels.set(t.pixels, n * plane))
  return { pixels, count: images.length, inputPixels: sources.reduce((a, s) => a + s.width * s.height, 0) }
}

/** Pools latent rows (1+L, D) into one D vector. */
export function poolLatent (latent: Float32Array, tokens: number, D: number, pooling: Pooling): Float32Array {
  if (pooling === 'cls') return latent.slice(0, D)
  const out = new Float32Array(D)
  for (let t = 1; t < tokens; t++) {
    const row = t * D
    for (let d = 0; d < D; d++) out[d] += latent[row + d]
  }
  for (let d = 0; d < D; d++) out[d] /= tokens - 1
  return out
}

export function l2Normalize (v: Float32Array): Float32Array {
  let sum = 0
  for (const x of v) sum += x * x
  const norm = Math.sqrt(sum)
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] /= norm
  return v
}

/** Runs the encoder on ready tensors (N, 3, S, S) with the full sequence and pools. */
export async function embedPixels (model: LoadedModel, pixels: Float32Array, count: number, options: EmbedOptions, runOptions: RunOptions = {}): Promise<Omit<EmbedResult, 'pixels'>> {
  const S = model.manifest.eval_transform.center_crop
  const L = model.manifest.num_patches
  const D = model.manifest.dims.embed_dim
  const ids = new BigInt64Array(count * L) // (N, L): 0..L-1 per image, the full sequence
  for (let n = 0; n < count; n++) for (let t = 0; t < L; t++) ids[n * L + t] = BigInt(t)
  const { outputs, queueMs, inferenceMs } = await model.run('encoder', {
    images: float32Tensor(pixels, [count, 3, S, S]),
    ids_keep: int64Tensor(ids, [count, L])
  }, runOptions)
  const latent = outputs.latent // (N, 1+L, D)
  if (latent === undefined || latent.dims[1] !== 1 + L || latent.dims[2] !== D) {
    throw new Error(`encoder of ${model.id} returned ${latent === undefined ? 'no latent' : `latent [${latent.dims.join(', ')}]`}, expected [N, ${1 + L}, ${D}]. This is a bug.`)
  }
  const data = latent.data as Float32Array
  const rowSize = (1 + L) * D
  const embeddings: Float32Array[] = []
  const patchTokens: Float32Array[] = []
  for (let n = 0; n < count; n++) {
    const rows = data.subarray(n * rowSize, (n + 1) * rowSize) // (1+L, D)
    const v = poolLatent(rows, 1 + L, D, options.pooling)
    embeddings.push(options.normalize ? l2Normalize(v) : v)
    if (options.includePatchTokens) patchTokens.push(rows.slice(D)) // (L, D)
  }
  return { embeddings, patchTokens: options.includePatchTokens ? patchTokens : undefined, queueMs, inferenceMs }
}

export async function embedImages (model: LoadedModel, images: Buffer[], limits: ImageLimits, options: EmbedOptions, runOptions: RunOptions = {}, metrics?: Metrics): Promise<EmbedResult> {
  const { pixels, count, inputPixels } = await preprocessImages(model, images, limits, metrics, runOptions)
  const result = await embedPixels(model, pixels, count, options, runOptions)
  return { ...result, pixels: inputPixels }
}

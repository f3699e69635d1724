/**
 * Embeds example or query images for a classifier with a given model, pooling and normalisation, in
 * chunks of at most `chunkSize` images (the per-request image limit), so a large example set never
 * exceeds the batcher's queue bound. The same call embeds the benchmark's images (src/cli/fewshot-benchmark.ts).
 */
import type { LoadedModel } from '../bundles/model-registry.js'
import { embedImages, type Pooling } from '../features/embed.js'
import type { ImageLimits } from '../imaging/decode.js'
import type { RunOptions } from '../inference/batcher.js'
import type { Metrics } from '../metrics.js'
import { ApiError, type ItemError } from '../errors.js'
import { itemFailure, shiftItemErrors } from '../item-errors.js'

export interface EmbedChunksOptions {
  pooling: Pooling
  normalize: boolean
  limits: ImageLimits
  chunkSize: number
  run?: RunOptions
  metrics?: Metrics
}

/** images (N encoded files) -> N embeddings of D values, in order. */
export async function embedInChunks (model: LoadedModel, images: Buffer[], options: EmbedChunksOptions): Promise<Float32Array[]> {
  const out: Float32Array[] = []
  const failures: ItemError[] = []
  let headers: Record<string, string> | undefined
  for (let start = 0; start < images.length; start += options.chunkSize) {
    const chunk = images.slice(start, start + options.chunkSize)
    try {
      const result = await embedImages(model, chunk, options.limits, { pooling: options.pooling, normalize: options.normalize, includePatchTokens: false }, options.run ?? {}, options.metrics)
      out.push(...result.embeddings)
    } catch (error) {
      // images that failed are collected over every chunk (indexes: positions in `images`); other failures end it
      if (!(error instanceof ApiError) || error.errors === undefined) throw error
      // an overload refusal (503, e.g. the decode budget) fails the request: the later chunks are not embedded for nothing
      if (error.status === 503) throw shiftItemErrors(error, start, images.length)
      headers ??= error.headers
      failures.push(...error.errors.map((e) => ({ ...e, index: e.index + start })))
    }
  }
  const failure = itemFailure(failures, images.length, headers)
  if (failure !== null) throw failure
  return out
}

/** The encoder graph's sha256: what a classifier is pinned to. */
export function encoderSha256 (model: LoadedModel): string {
  const sha = model.sha256.encoder
  if (sha === undefined) throw new Error(`model ${model.id} has no encoder sha256. This is a bug.`)
  return sha
}

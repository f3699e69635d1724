/**
 * What the bare-session benchmarks share: the photos of a folder, an encoder's feeds built from them
 * (eval-transformed once, the full sequence of patches) and the img/s of a bare onnxruntime session on
 * those feeds at each batch size, with the service's session options.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { readBundle } from '../src/bundles/bundle-reader.js'
import { inspectImage } from '../src/imaging/decode.js'
import { applyEvalTransform } from '../src/imaging/eval-transform.js'

// the service's session options (src/inference/onnx-backend.ts): 'all' optimisations, no spinning
export const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', executionProviders: ['cpu'], extra: { 'session.intra_op.allow_spinning': '0' } }

/** The JPEG and PNG files of `dir`, sorted by name; an empty folder is an error. */
export function readPhotos (dir: string): Buffer[] {
  const photos = readdirSync(dir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().map((f) => readFileSync(join(dir, f)))
  if (photos.length === 0) throw new Error(`no photos in ${dir}`)
  return photos
}

/** The encoder graph of the bundle in `bundleDir` and its feeds for `batch` of `photos`. */
export async function encoderFeeds (bundleDir: string, photos: Buffer[]): Promise<{ path: string, feeds: (batch: number) => Record<string, ort.Tensor> }> {
  const bundle = await readBundle(bundleDir)
  const m = bundle.manifest
  const limits = { maxImageBytes: 1e9, maxImagePixels: 1e9, minImageSide: 1, allowedFormats: ['jpeg', 'png'] }
  const S = m.eval_transform.center_crop
  const L = m.num_patches
  const ready: Float32Array[] = []
  for (const p of photos) ready.push((await applyEvalTransform(await inspectImage(p, limits), m.eval_transform)).pixels)
  return {
    path: bundle.graphPaths.encoder as string,
    feeds: (batch) => {
      const images = new Float32Array(batch * 3 * S * S) // (N, 3, S, S)
      for (let n = 0; n < batch; n++) images.set(ready[n % ready.length], n * 3 * S * S)
      const ids = BigInt64Array.from({ length: batch * L }, (_, i) => BigInt(i % L)) // (N, L)
      return { images: new ort.Tensor('float32', images, [batch, 3, S, S]), ids_keep: new ort.Tensor('int64', ids, [batch, L]) }
    }
  }
}

export interface Bare { batch: number, imagesPerSecond: number }

/** img/s of a bare session on the graph at each batch size, `seconds` each after one warm-up run. */
export async function bareThroughput (encoder: Awaited<ReturnType<typeof encoderFeeds>>, batches: number[], seconds: number): Promise<Bare[]> {
  const session = await ort.InferenceSession.create(encoder.path, SESSION_OPTIONS)
  const out: Bare[] = []
  try {
    for (const batch of batches) {
      const f = encoder.feeds(batch)
      await session.run(f) // warm-up for this shape
      let count = 0
      const t0 = performance.now()
      const end = t0 + seconds * 1000
      do { await session.run(f); count += batch } while (performance.now() < end)
      out.push({ batch, imagesPerSecond: count / ((performance.now() - t0) / 1000) })
    }
  } finally {
    await session.release()
  }
  return out
}

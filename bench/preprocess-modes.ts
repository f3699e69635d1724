/**
 * `npm run bench:preprocess [-- --photos DIR --model NAME]`
 *
 * The two resize modes of the evaluation transform (--preprocess-resize pillow | sharp) on
 * the real photos of ../shared/data/photos: CPU milliseconds per photo (decode + resize + normalise,
 * one at a time, process.cpuUsage), the distance of the model input from the exact ('pillow', which equals
 * the training transform) after normalisation, and the cosine similarity of the resulting embeddings
 * (mean-pooled patch tokens after the final LayerNorm, the service's default) to the exact ones.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import * as ort from 'onnxruntime-node'
import { readBundle } from '../src/bundles/bundle-reader.js'
import { inspectImage } from '../src/imaging/decode.js'
import { applyEvalTransform, setResizeBackend, type ResizeBackend } from '../src/imaging/eval-transform.js'

const ROOT = resolve(import.meta.dirname, '..')
const { values } = parseArgs({ options: { photos: { type: 'string', default: '../shared/data/photos' }, model: { type: 'string', default: 'clmae-vit-mini-p8-64' } } })
const dir = resolve(ROOT, values.photos)
const photos = readdirSync(dir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().map((f) => readFileSync(join(dir, f)))
const bundle = await readBundle(join(ROOT, 'models', values.model))
const m = bundle.manifest
const S = m.eval_transform.center_crop
const L = m.num_patches
const D = m.dims.embed_dim
const limits = { maxImageBytes: 1e9, maxImagePixels: 1e9, minImageSide: 1, allowedFormats: ['jpeg', 'png'] }
const session = await ort.InferenceSession.create(bundle.graphPaths.encoder!, { executionProviders: ['cpu'] })

async function embed (pixels: Float32Array): Promise<Float64Array> {
  const ids = BigInt64Array.from({ length: L }, (_, i) => BigInt(i))
  const out = await session.run({ images: new ort.Tensor('float32', pixels, [1, 3, S, S]), ids_keep: new ort.Tensor('int64', ids, [1, L]) })
  const latent = Object.values(out)[0].data as Float32Array // (1, 1 + L, D)
  const v = new Float64Array(D)
  for (let t = 1; t <= L; t++) for (let d = 0; d < D; d++) v[d] += latent[t * D + d] / L
  const norm = Math.hypot(...v)
  return v.map((x) => x / norm)
}

const modes: ResizeBackend[] = ['pillow', 'sharp']
const results = new Map<ResizeBackend, { cpuMs: number[], pixels: Float32Array[], embeddings: Float64Array[] }>()
for (const mode of modes) {
  setResizeBackend(mode)
  const r = { cpuMs: [] as number[], pixels: [] as Float32Array[], embeddings: [] as Float64Array[] }
  for (const p of photos) await applyEvalTransform(await inspectImage(p, limits), m.eval_transform) // warm-up
  for (const p of photos) {
    const before = process.cpuUsage()
    const out = await applyEvalTransform(await inspectImage(p, limits), m.eval_transform)
    const used = process.cpuUsage(before)
    r.cpuMs.push((used.user + used.system) / 1000)
    r.pixels.push(out.pixels)
    r.embeddings.push(await embed(out.pixels))
  }
  results.set(mode, r)
}

const exact = results.get('pillow')!
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
console.log(`# ${photos.length} photos from ${dir}; model ${values.model}; input ${S}x${S}`)
console.log('| --preprocess-resize | CPU ms per photo (mean) | max / mean abs diff of the input vs pillow | embedding cosine vs pillow (min / mean) |')
console.log('|---|---|---|---|')
for (const mode of modes) {
  const r = results.get(mode)!
  let max = 0
  const meanDiffs: number[] = []
  r.pixels.forEach((px, i) => {
    let sum = 0
    for (let j = 0; j < px.length; j++) {
      const d = Math.abs(px[j] - exact.pixels[i][j])
      max = Math.max(max, d)
      sum += d
    }
    meanDiffs.push(sum / px.length)
  })
  const cos = r.embeddings.map((e, i) => e.reduce((a, x, d) => a + x * exact.embeddings[i][d], 0))
  console.log(`| ${mode} | ${mean(r.cpuMs).toFixed(1)} | ${max.toFixed(3)} / ${mean(meanDiffs).toFixed(4)} | ${Math.min(...cos).toFixed(5)} / ${mean(cos).toFixed(5)} |`)
}
await session.release()

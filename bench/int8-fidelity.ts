/**
 * How close an int8 bundle (python -m clmae.quantize) stays to its fp32 source, through the service's own
 * code path: the bundle registry and batcher, the decoding and eval transform (preprocessImages) and the
 * encoder + pooling (embedPixels), as POST /v1/embeddings runs them.
 *
 *   npm run bench:int8-fidelity -- --models-dir runs/int8/models --model clmae-vit-mini-p8-64-int8
 *
 * For each --model (an int8 bundle; its source is the bundle named in manifest.quantization.source, which
 * must sit in the same models directory) over every image of --photos: the cosine of the int8 embedding to
 * the fp32 one, mean and minimum, for cls and mean pooling (both L2-normalised); and, when the bundle has the
 * masking module, how many of the K patches the int8 keep scores would keep are the fp32 ones (K at the
 * bundle's mask ratio: what masking 'learned' keeps) and the largest keep-score difference.
 * Random-weight bundles say nothing here (every image maps to nearly the same embedding): use trained ones.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { extname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import pino from 'pino'
import { ModelRegistry, type LoadedModel } from '../src/bundles/model-registry.js'
import { loadConfig } from '../src/config.js'
import { embedPixels, preprocessImages, type Pooling } from '../src/features/embed.js'
import { keepScoresOf } from '../src/features/mask-map.js'
import { setResizeBackend } from '../src/imaging/eval-transform.js'
import { cpuLine } from './cpu-flags.js'

const USAGE = `npm run bench:int8-fidelity -- --model NAME-int8 [--model ...] [--models-dir DIR] [--photos DIR] [--preprocess-resize sharp|pillow]`

interface Row { model: string, source: string, pooling: Pooling, mean: number, min: number }

function cosines (a: Float32Array[], b: Float32Array[]): number[] {
  return a.map((v, n) => v.reduce((s, x, i) => s + x * b[n][i], 0))
}

/** indices of the k largest values */
function topK (v: Float32Array, k: number): Set<number> {
  return new Set([...v.keys()].sort((i, j) => v[j] - v[i]).slice(0, k))
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', multiple: true },
      'models-dir': { type: 'string' },
      photos: { type: 'string', default: '../shared/data/photos' },
      'preprocess-resize': { type: 'string' },
      help: { type: 'boolean', default: false }
    }
  })
  if (values.help || values.model === undefined) { console.log(USAGE); return }
  const base = loadConfig({ env: process.env, argv: values['preprocess-resize'] !== undefined ? ['--preprocess-resize', values['preprocess-resize']] : [] })
  setResizeBackend(base.preprocessResize)
  const modelsDir = resolve(values['models-dir'] ?? base.modelsDir)
  const int8Names = values.model
  const sourceOf = (name: string): string => {
    const manifest = JSON.parse(readFileSync(join(modelsDir, name, 'manifest.json'), 'utf8'))
    if (manifest.quantization === undefined) throw new Error(`${name}: not an int8 bundle (its manifest has no quantization)`)
    return manifest.quantization.source.name as string
  }
  const pairs = int8Names.map((n) => [n, sourceOf(n)] as const)
  const names = [...new Set(pairs.flat())]
  const config = loadConfig({ env: process.env, argv: [], overrides: { modelsDir, models: names, defaultModel: names[0], maxBatchSize: 32, maxWaitMs: 0, logLevel: 'warn' } })
  const registry = await ModelRegistry.load(config, { logger: pino({ level: 'warn' }) })
  const photosDir = resolve(values.photos)
  const files = readdirSync(photosDir).filter((f) => ['.jpg', '.jpeg', '.png', '.webp'].includes(extname(f).toLowerCase())).sort()
  const images = files.map((f) => readFileSync(join(photosDir, f)))

  const pixelsOf = new Map<string, Float32Array>()
  const preprocess = async (model: LoadedModel): Promise<Float32Array> => {
    const key = JSON.stringify(model.manifest.eval_transform)
    if (!pixelsOf.has(key)) pixelsOf.set(key, (await preprocessImages(model, images, config)).pixels)
    return pixelsOf.get(key) as Float32Array
  }
  const rows: Row[] = []
  const maskRows: string[] = []
  try {
    for (const [int8Name, sourceName] of pairs) {
      const [int8, fp32] = [registry.get(int8Name), registry.get(sourceName)]
      const pixels = await preprocess(fp32)
      for (const pooling of ['mean', 'cls'] as const) {
        const options = { pooling, normalize: true, includePatchTokens: false }
        const [a, b] = [(await embedPixels(fp32, pixels, images.length, options)).embeddings, (await embedPixels(int8, pixels, images.length, options)).embeddings]
        const c = cosines(a, b)
        rows.push({ model: int8Name, source: sourceName, pooling, mean: c.reduce((s, x) => s + x, 0) / c.length, min: Math.min(...c) })
      }
      if (int8.hasGraph('keep_scores') && fp32.hasGraph('keep_scores')) {
        const k = Math.floor(fp32.manifest.num_patches * (1 - fp32.manifest.mask_ratio))
        const [a, b] = [(await keepScoresOf(fp32, pixels, images.length)).scores, (await keepScoresOf(int8, pixels, images.length)).scores]
        const overlap = a.map((s, n) => { const kept = topK(b[n], k); return [...topK(s, k)].filter((t) => kept.has(t)).length / k })
        const maxDiff = Math.max(...a.map((s, n) => Math.max(...s.map((x, t) => Math.abs(x - b[n][t])))))
        maskRows.push(`| ${int8Name} | ${k} | ${(100 * overlap.reduce((s, x) => s + x, 0) / overlap.length).toFixed(1)}% | ${(100 * Math.min(...overlap)).toFixed(1)}% | ${maxDiff.toFixed(4)} |`)
      }
    }
  } finally {
    await registry.close()
  }
  console.log(`int8 vs fp32 over ${images.length} images of ${photosDir} (preprocess-resize ${base.preprocessResize}); CPU: ${cpuLine()}`)
  console.log('')
  console.log('| int8 bundle | fp32 source | pooling | mean cosine | min cosine |')
  console.log('|---|---|---|---|---|')
  for (const r of rows) console.log(`| ${r.model} | ${r.source} | ${r.pooling} | ${r.mean.toFixed(4)} | ${r.min.toFixed(4)} |`)
  if (maskRows.length > 0) {
    console.log('')
    console.log('| int8 bundle | K kept | kept patches shared with fp32 (mean) | (min) | max keep-score diff |')
    console.log('|---|---|---|---|---|')
    for (const line of maskRows) console.log(line)
  }
}

main().catch((error) => { console.error(error); process.exit(1) })

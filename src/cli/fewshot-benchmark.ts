/**
 * The CL-MAE paper's few-shot protocol on ImageFolder data sets, through the service's own code path:
 * the bundle registry and batcher (src/bundles, src/inference), the image decoding and eval transform
 * (src/features/embed.ts preprocessImages), the encoder + pooling (embedPixels) and the probe of
 * POST /v1/classifiers (src/fewshot/classifiers.ts fitProbe via src/fewshot/protocol.ts).
 *
 *   node --import tsx src/cli/fewshot-benchmark.ts --data ../shared/data/sport_balls --model clmae-vit-mini-p8-64
 *
 * Per data set: train = DATA/train, test = DATA/test (or DATA/val); a folder without splits (class
 * folders directly under DATA) gets a seeded stratified split (--split-test-fraction, --split-seed).
 * The test set is capped to --max-test-per-class images per class (seeded, stratified) so a 2-core CPU
 * can run it; every image is decoded and embedded once per model and reused across runs. The pixel
 * baseline is the same probe on the preprocessed input average-pooled to --pixels x --pixels x 3.
 * Output: a markdown table on stdout (and --out-md) and JSON (--out-json) stamped with each model's
 * encoder sha256.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname, extname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import pino from 'pino'
import { ModelRegistry, type LoadedModel } from '../bundles/model-registry.js'
import { architectureName } from '../bundles/manifest.js'
import { loadConfig, type Config } from '../config.js'
import { embedPixels, preprocessImages, type Pooling } from '../features/embed.js'
import { setResizeBackend } from '../imaging/eval-transform.js'
import { PROBE_METHODS, type ProbeMethod } from '../fewshot/classifiers.js'
import { encoderSha256 } from '../fewshot/embed-examples.js'
import { createMatrix } from '../fewshot/matrix.js'
import { capPerClass, evaluateShotRuns, neededIndices, planShotRuns, poolPixels, stratifiedSplit, type ShotResult } from '../fewshot/protocol.js'

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp'])
/** The images of one chunk are preprocessed in parallel and embedded as one batch. */
const CHUNK = 32

interface Folder { classes: string[], files: string[], labels: number[] }

/** ImageFolder: DIR/<class>/<image>, classes sorted (torchvision order). */
function readImageFolder (dir: string, classes?: string[]): Folder {
  const names = classes ?? readdirSync(dir).filter((n) => statSync(join(dir, n)).isDirectory()).sort()
  const files: string[] = []
  const labels: number[] = []
  names.forEach((name, k) => {
    const classDir = join(dir, name)
    let entries: string[] = []
    try { entries = readdirSync(classDir).sort() } catch { throw new Error(`${classDir}: class folder missing (classes come from the train split)`) }
    for (const f of entries) {
      if (IMAGE_EXTENSIONS.has(extname(f).toLowerCase())) { files.push(join(classDir, f)); labels.push(k) }
    }
  })
  if (files.length === 0) throw new Error(`${dir}: no images in ImageFolder layout (DIR/<class>/<image>)`)
  return { classes: names, files, labels }
}

export interface DatasetResult {
  name: string
  path: string
  /** how train and test were obtained */
  split: string
  classes: string[]
  train_pool: number
  test_images: number
  max_test_per_class: number
  /** feature name (a model id or "pixels-16x16") -> one row per shot count */
  results: Record<string, ShotResult[]>
}

export interface BenchmarkReport {
  generated_at: string
  command: string
  protocol: string
  method: ProbeMethod
  pooling: Pooling
  normalize: boolean
  /** the eval transform's resize mode (--preprocess-resize): pillow = exact, sharp = the fast path */
  preprocess_resize: string
  shots: number[]
  seeds: number[]
  models: Record<string, { encoder_sha256: string, method: string, config: string }>
  pixel_baseline: string
  datasets: DatasetResult[]
}

/** Preprocessed (3, S, S) inputs of `files`, computed once per eval transform and cached. */
class InputCache {
  private readonly cache = new Map<string, Float32Array>()
  constructor (private readonly config: Config) {}

  async get (model: LoadedModel, files: string[]): Promise<Float32Array[]> {
    const key = JSON.stringify(model.manifest.eval_transform)
    const missing = [...new Set(files.filter((f) => !this.cache.has(`${key}|${f}`)))]
    for (let start = 0; start < missing.length; start += CHUNK) {
      const chunk = missing.slice(start, start + CHUNK)
      const { pixels } = await preprocessImages(model, chunk.map((f) => readFileSync(f)), this.config)
      const plane = pixels.length / chunk.length
      chunk.forEach((f, i) => this.cache.set(`${key}|${f}`, pixels.slice(i * plane, (i + 1) * plane)))
    }
    return files.map((f) => this.cache.get(`${key}|${f}`) as Float32Array)
  }
}

async function embedFiles (model: LoadedModel, inputs: Float32Array[], pooling: Pooling, normalize: boolean): Promise<Float32Array[]> {
  const out: Float32Array[] = []
  for (let start = 0; start < inputs.length; start += CHUNK) {
    const chunk = inputs.slice(start, start + CHUNK)
    const plane = chunk[0].length
    const pixels = new Float32Array(chunk.length * plane) // (n, 3, S, S)
    chunk.forEach((p, i) => pixels.set(p, i * plane))
    const { embeddings } = await embedPixels(model, pixels, chunk.length, { pooling, normalize, includePatchTokens: false })
    out.push(...embeddings)
  }
  return out
}

function fmt (s: { mean: number, std: number }): string {
  return `${(100 * s.mean).toFixed(1)} ± ${(100 * s.std).toFixed(1)}`
}

/** The markdown table: one row per (data set, features), Acc@1 / Acc@5 per shot count. */
export function renderMarkdown (report: BenchmarkReport): string {
  const lines: string[] = []
  lines.push(`Few-shot ${report.method} probe (${report.protocol}). Cells: Acc@1 / Acc@5 in %, mean ± std over seeds ${report.seeds.join(', ')}.`)
  lines.push('')
  lines.push(`| data set | features | ${report.shots.map((n) => `${n}-shot`).join(' | ')} |`)
  lines.push(`|---|---|${report.shots.map(() => '---').join('|')}|`)
  for (const d of report.datasets) {
    for (const [feature, rows] of Object.entries(d.results)) {
      const cells = report.shots.map((n) => {
        const r = rows.find((x) => x.shots === n)
        return r === undefined ? '–' : `${fmt(r.acc1)} / ${fmt(r.acc5)}`
      })
      lines.push(`| ${d.name} | ${feature} | ${cells.join(' | ')} |`)
    }
  }
  lines.push('')
  for (const d of report.datasets) {
    // A cap can only have removed images when it is below the number of test images.
    const sample = d.test_images <= d.max_test_per_class ? 'every test image' : `at most ${d.max_test_per_class} per class, seeded stratified sample`
    lines.push(`- ${d.name}: ${d.classes.length} classes; ${d.split}; train pool ${d.train_pool} images; test ${d.test_images} images (${sample}).`)
  }
  for (const [id, m] of Object.entries(report.models)) lines.push(`- ${id}: encoder sha256 \`${m.encoder_sha256}\` (${m.method}, ${m.config}).`)
  lines.push(`- Pixel baseline: ${report.pixel_baseline}.`)
  lines.push(`- Generated ${report.generated_at} by \`${report.command}\`.`)
  return lines.join('\n')
}

const USAGE = `usage: node --import tsx src/cli/fewshot-benchmark.ts --data DIR [--data DIR ...] [options]
  --data DIR                 ImageFolder data set (DIR/train + DIR/test|val, or DIR/<class> without splits); repeatable
  --model NAME               bundle to evaluate (repeatable; default: the configured default model)
  --models-dir DIR           bundle directory (default: CLMAE_MODELS_DIR or ./models)
  --method logreg|knn|centroid  probe (default logreg, as POST /v1/classifiers)
  --pooling mean|cls         (default mean)   --no-normalize   skip L2 normalisation (default: normalise)
  --shots 1,2,4,8,16         --seeds 0,1,2
  --max-test-per-class N     cap on test images per class (default 50)
  --split-test-fraction F    test share for data sets without splits (default 0.2)   --split-seed N (default 0)
  --pixels P                 pixel baseline side (default 16; 0 = no baseline)
  --preprocess-resize MODE   pillow (exact) or sharp (fast path); default: the service's default
  --out-json FILE            --out-md FILE`

export async function main (argv: string[]): Promise<BenchmarkReport | undefined> {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string', multiple: true },
      model: { type: 'string', multiple: true },
      'models-dir': { type: 'string' },
      method: { type: 'string', default: 'logreg' },
      pooling: { type: 'string', default: 'mean' },
      'no-normalize': { type: 'boolean', default: false },
      shots: { type: 'string', default: '1,2,4,8,16' },
      seeds: { type: 'string', default: '0,1,2' },
      'max-test-per-class': { type: 'string', default: '50' },
      'split-test-fraction': { type: 'string', default: '0.2' },
      'split-seed': { type: 'string', default: '0' },
      pixels: { type: 'string', default: '16' },
      'preprocess-resize': { type: 'string' },
      'out-json': { type: 'string' },
      'out-md': { type: 'string' },
      help: { type: 'boolean', default: false }
    }
  })
  if (values.help || values.data === undefined) { console.log(USAGE); return undefined }
  const method = values.method as ProbeMethod
  if (!PROBE_METHODS.includes(method)) throw new Error(`--method must be one of ${PROBE_METHODS.join(', ')}`)
  const pooling = values.pooling as Pooling
  if (pooling !== 'mean' && pooling !== 'cls') throw new Error('--pooling must be mean or cls')
  const normalize = !values['no-normalize']
  const ints = (s: string, flag: string): number[] => s.split(',').map((v) => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < 0) throw new Error(`${flag}: ${JSON.stringify(v)} is not a non-negative integer`)
    return n
  })
  const shots = ints(values.shots, '--shots')
  const seeds = ints(values.seeds, '--seeds')
  const maxTest = ints(values['max-test-per-class'], '--max-test-per-class')[0]
  const splitFraction = Number(values['split-test-fraction'])
  const splitSeed = ints(values['split-seed'], '--split-seed')[0]
  const pixelSide = ints(values.pixels, '--pixels')[0]

  const base = loadConfig({ env: process.env, argv: values['preprocess-resize'] !== undefined ? ['--preprocess-resize', values['preprocess-resize']] : [] })
  setResizeBackend(base.preprocessResize)
  const modelNames = values.model ?? [base.defaultModel]
  // Larger batches than the service default: the CLI is the only client. Same batcher code path.
  const config = loadConfig({ env: process.env, argv: [], overrides: { modelsDir: values['models-dir'] ?? base.modelsDir, models: modelNames, defaultModel: modelNames[0], maxBatchSize: CHUNK, maxWaitMs: 0, logLevel: 'warn' } })
  const registry = await ModelRegistry.load(config, { logger: pino({ level: 'warn' }) })
  const log = (message: string): void => { process.stderr.write(`[fewshot] ${message}\n`) }
  const models = modelNames.map((n) => registry.get(n))
  const inputs = new InputCache(config)
  const report: BenchmarkReport = {
    generated_at: new Date().toISOString(),
    command: ['node --import tsx src/cli/fewshot-benchmark.ts', ...argv].join(' '),
    protocol: `n-shot per class drawn from train (nested draws per seed), ${seeds.length} seeded runs, Acc@1/Acc@5 on test, sample std; logreg C by stratified k-fold CV when n >= 2`,
    method,
    pooling,
    normalize,
    preprocess_resize: base.preprocessResize,
    shots,
    seeds,
    models: Object.fromEntries(models.map((m) => [m.id, { encoder_sha256: encoderSha256(m), method: m.manifest.method, config: architectureName(m.manifest) }])),
    pixel_baseline: pixelSide > 0 ? `the same probe on the preprocessed input average-pooled to ${pixelSide}x${pixelSide}x3 (${3 * pixelSide * pixelSide} values)` : 'none',
    datasets: []
  }

  try {
    for (const dataDir of values.data.map((d) => resolve(d))) {
      const hasSplits = ['train', 'test', 'val'].map((s) => { try { return statSync(join(dataDir, s)).isDirectory() } catch { return false } })
      let trainFiles: string[], trainLabels: number[], testFiles: string[], testLabels: number[], classes: string[], split: string
      if (hasSplits[0] && (hasSplits[1] || hasSplits[2])) {
        const testSplit = hasSplits[1] ? 'test' : 'val'
        const train = readImageFolder(join(dataDir, 'train'))
        const test = readImageFolder(join(dataDir, testSplit), train.classes)
        ;({ classes } = train)
        trainFiles = train.files; trainLabels = train.labels; testFiles = test.files; testLabels = test.labels
        split = `train split for shots, ${testSplit} split for testing`
      } else {
        const all = readImageFolder(dataDir)
        classes = all.classes
        const s = stratifiedSplit(all.labels, classes.length, splitFraction, splitSeed)
        trainFiles = s.train.map((i) => all.files[i]); trainLabels = s.train.map((i) => all.labels[i])
        testFiles = s.test.map((i) => all.files[i]); testLabels = s.test.map((i) => all.labels[i])
        split = `no split in the folder: seeded stratified split (test fraction ${splitFraction}, seed ${splitSeed})`
      }
      const kept = capPerClass(testFiles.map((_, i) => i), testLabels, classes.length, maxTest, 0)
      testFiles = kept.map((i) => testFiles[i]); testLabels = kept.map((i) => testLabels[i])
      const runs = planShotRuns(trainLabels, classes.length, shots, seeds)
      const needed = neededIndices(runs)
      const name = basename(dataDir)
      log(`${name}: ${classes.length} classes, ${needed.length} train images needed, ${testFiles.length} test images`)
      const result: DatasetResult = { name, path: dataDir, split, classes, train_pool: trainFiles.length, test_images: testFiles.length, max_test_per_class: maxTest, results: {} }

      const evaluate = (feature: string, trainVectors: Map<number, ArrayLike<number>>, testVectors: ArrayLike<number>[]): void => {
        const D = testVectors[0].length
        const testX = createMatrix(testVectors.length, D)
        testVectors.forEach((v, i) => testX.data.set(v, i * D))
        const started = Date.now()
        result.results[feature] = evaluateShotRuns({
          runs, trainLabels, features: (i) => trainVectors.get(i) as ArrayLike<number>, testX, testY: testLabels, classNames: classes, method,
          onRun: (run, acc1) => log(`${name} ${feature} seed ${run.seed} ${run.shots}-shot: Acc@1 ${(100 * acc1).toFixed(1)}`)
        })
        log(`${name} ${feature}: probes fitted in ${((Date.now() - started) / 1000).toFixed(1)} s`)
      }

      for (const model of models) {
        const started = Date.now()
        const trainInputs = await inputs.get(model, needed.map((i) => trainFiles[i]))
        const testInputs = await inputs.get(model, testFiles)
        const trainEmb = await embedFiles(model, trainInputs, pooling, normalize)
        const testEmb = await embedFiles(model, testInputs, pooling, normalize)
        log(`${name} ${model.id}: ${trainEmb.length + testEmb.length} images preprocessed + embedded in ${((Date.now() - started) / 1000).toFixed(1)} s`)
        evaluate(model.id, new Map(needed.map((t, j) => [t, trainEmb[j]])), testEmb)
      }
      if (pixelSide > 0) {
        const model = models[0]
        const S = model.manifest.eval_transform.center_crop
        if (S % pixelSide !== 0) throw new Error(`--pixels ${pixelSide} must divide the crop size ${S}`)
        const pool = (x: Float32Array): Float32Array => poolPixels(x, S, S / pixelSide)
        const trainPix = (await inputs.get(model, needed.map((i) => trainFiles[i]))).map(pool)
        const testPix = (await inputs.get(model, testFiles)).map(pool)
        evaluate(`pixels-${pixelSide}x${pixelSide}`, new Map(needed.map((t, j) => [t, trainPix[j]])), testPix)
      }
      report.datasets.push(result)
    }
  } finally {
    await registry.close()
  }

  const markdown = renderMarkdown(report)
  console.log(markdown)
  if (values['out-json'] !== undefined) { mkdirSync(dirname(resolve(values['out-json'])), { recursive: true }); writeFileSync(values['out-json'], JSON.stringify(report, null, 1) + '\n') }
  if (values['out-md'] !== undefined) { mkdirSync(dirname(resolve(values['out-md'])), { recursive: true }); writeFileSync(values['out-md'], markdown + '\n') }
  return report
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`fewshot-benchmark: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  })
}

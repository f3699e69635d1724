/**
 * The CL-MAE paper's few-shot protocol (its Table 1 / Fig. 4): n = 1, 2, 4, 8, 16 training examples
 * per class drawn from the train split, 3 seeded runs, Acc@1 and Acc@5 on the test split, mean and
 * standard deviation over the runs. The probe is fitProbe() of src/fewshot/classifiers.ts, the very
 * function POST /v1/classifiers uses (logreg: standardised, C by stratified CV when n >= 2).
 *
 * Draws are nested: for one seed, each class's train images are shuffled once and the n-shot set is
 * the first n of that order, so the 2-shot set contains the 1-shot set (as in most few-shot
 * benchmarks, and so every image is embedded once). The std is the sample std (n - 1) over runs.
 */
import { fitProbe, rankAll, type ProbeMethod } from './classifiers.js'
import type { Matrix } from './matrix.js'
import { createRandom, indicesByClass, shuffled } from './random.js'

export const PROTOCOL_SHOTS = [1, 2, 4, 8, 16] as const
export const PROTOCOL_SEEDS = [0, 1, 2] as const

export interface ShotRun {
  seed: number
  shots: number
  /** train indices drawn (shots per class, fewer when a class has fewer images) */
  indices: number[]
}

/** One run per (seed, shots); `labels` are the train images' class indices. */
export function planShotRuns (labels: readonly number[], numClasses: number, shots: readonly number[] = PROTOCOL_SHOTS, seeds: readonly number[] = PROTOCOL_SEEDS): ShotRun[] {
  const groups = indicesByClass(labels, numClasses)
  const runs: ShotRun[] = []
  for (const seed of seeds) {
    const random = createRandom(0x5eed + seed)
    const orders = groups.map((g) => shuffled(g, random))
    for (const n of shots) runs.push({ seed, shots: n, indices: orders.flatMap((o) => o.slice(0, n)) })
  }
  return runs
}

/** Every train index some run needs (embed these once). */
export function neededIndices (runs: readonly ShotRun[]): number[] {
  return [...new Set(runs.flatMap((r) => r.indices))].sort((a, b) => a - b)
}

/**
 * Seeded stratified split for a data set without one: within each class, a shuffled `testFraction`
 * (rounded, at least 1 when the class has 2 or more images) goes to test.
 */
export function stratifiedSplit (labels: readonly number[], numClasses: number, testFraction: number, seed: number): { train: number[], test: number[] } {
  const random = createRandom(0x5911 + seed)
  const train: number[] = []
  const test: number[] = []
  for (const group of indicesByClass(labels, numClasses)) {
    const order = shuffled(group, random)
    const nTest = group.length < 2 ? 0 : Math.max(1, Math.round(group.length * testFraction))
    test.push(...order.slice(0, nTest))
    train.push(...order.slice(nTest))
  }
  return { train: train.sort((a, b) => a - b), test: test.sort((a, b) => a - b) }
}

/** At most `maxPerClass` of `indices` per class, a seeded stratified sample (all when fewer). */
export function capPerClass (indices: readonly number[], labels: readonly number[], numClasses: number, maxPerClass: number, seed: number): number[] {
  const random = createRandom(0xca9 + seed)
  const byClass: number[][] = Array.from({ length: numClasses }, () => [])
  for (const i of indices) byClass[labels[i]].push(i)
  return byClass.flatMap((g) => shuffled(g, random).slice(0, maxPerClass)).sort((a, b) => a - b)
}

export interface Summary { mean: number, std: number, runs: number[] }

export interface ShotResult {
  shots: number
  acc1: Summary
  acc5: Summary
  /** the L2 strengths the CV picked, one per run (logreg) */
  C: (number | null)[]
}

function summarize (values: number[]): Summary {
  const mean = values.reduce((a, b) => a + b, 0) / values.length
  const variance = values.length < 2 ? 0 : values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1)
  return { mean, std: Math.sqrt(variance), runs: values }
}

/**
 * Fits the probe on each run's train rows and scores it on the test rows.
 * Args: `features(i)` is train image i's feature vector (D); testX (T, D); testY (T) class indices;
 * classNames (K) label names in class-index order.
 */
export function evaluateShotRuns (options: {
  runs: readonly ShotRun[]
  trainLabels: readonly number[]
  features: (trainIndex: number) => ArrayLike<number>
  testX: Matrix
  testY: readonly number[]
  classNames: readonly string[]
  method?: ProbeMethod
  onRun?: (run: ShotRun, acc1: number, acc5: number) => void
}): ShotResult[] {
  const { runs, trainLabels, features, testX, testY, classNames } = options
  const method = options.method ?? 'logreg'
  const byShots = new Map<number, { acc1: number[], acc5: number[], C: (number | null)[] }>()
  for (const run of runs) {
    const d = testX.cols
    const x: Matrix = { rows: run.indices.length, cols: d, data: new Float64Array(run.indices.length * d) }
    run.indices.forEach((t, r) => x.data.set(features(t), r * d))
    const fit = fitProbe(method, x, run.indices.map((t) => classNames[trainLabels[t]]), { seed: run.seed })
    // The probe's labels are sorted names; map back to class indices for scoring.
    const toClass = fit.probe.labels.map((name) => classNames.indexOf(name))
    const ranks = rankAll(fit.probe, testX)
    let top1 = 0
    let top5 = 0
    ranks.forEach((order, i) => {
      const classes = order.map((k) => toClass[k])
      if (classes[0] === testY[i]) top1++
      if (classes.slice(0, 5).includes(testY[i])) top5++
    })
    const acc1 = top1 / testY.length
    const acc5 = top5 / testY.length
    options.onRun?.(run, acc1, acc5)
    const entry = byShots.get(run.shots) ?? { acc1: [], acc5: [], C: [] }
    entry.acc1.push(acc1)
    entry.acc5.push(acc5)
    entry.C.push(fit.cv.C ?? null)
    byShots.set(run.shots, entry)
  }
  return [...byShots].sort((a, b) => a[0] - b[0]).map(([shots, e]) => ({ shots, acc1: summarize(e.acc1), acc5: summarize(e.acc5), C: e.C }))
}

/**
 * Raw-pixel baseline features: the preprocessed image (3, S, S) average-pooled to (3, S/f, S/f) and
 * flattened, e.g. 64x64 -> 16x16x3 = 768 values with f = 4. Same preprocessing as the model's input.
 */
export function poolPixels (image: Float32Array, side: number, factor: number): Float32Array {
  const out = side / factor
  if (!Number.isInteger(out)) throw new RangeError(`side ${side} is not a multiple of ${factor}`)
  const result = new Float32Array(3 * out * out)
  for (let c = 0; c < 3; c++) {
    for (let r = 0; r < out; r++) {
      for (let q = 0; q < out; q++) {
        let s = 0
        for (let dr = 0; dr < factor; dr++) for (let dq = 0; dq < factor; dq++) s += image[c * side * side + (r * factor + dr) * side + q * factor + dq]
        result[c * out * out + r * out + q] = s / (factor * factor)
      }
    }
  }
  return result
}

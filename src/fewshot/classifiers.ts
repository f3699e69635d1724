/**
 * Few-shot classifiers on served embeddings: fit a probe (logreg | knn | centroid) on labelled
 * embeddings, predict top-k labels with an optional abstain threshold, and keep every classifier
 * pinned to the embedding graph it was fitted on. Pure TypeScript, no Fastify: the HTTP routes and the
 * benchmark CLI (src/cli/fewshot-benchmark.ts) both call these functions.
 *
 * Shapes: x (N, D) embeddings, one row per example or query; K classes; labels are sorted strings and
 * a class index is a position in that list.
 */
import { ApiError } from '../errors.js'
import { crossValidate, DEFAULT_C, planFolds, selectC, type FoldPlan } from './cross-validation.js'
import { createMatrix, matrixFromRows, matrixToRows, selectRows, type Matrix } from './matrix.js'
import { fitCentroid, predictCentroid } from './probes/centroid.js'
import { DEFAULT_KNN_K, fitKnn, predictKnn } from './probes/knn.js'
import { fitLogreg, predictLogreg } from './probes/logreg.js'
import { applyStandardizer, fitStandardizer } from './standardize.js'

export const PROBE_METHODS = ['logreg', 'knn', 'centroid'] as const
export type ProbeMethod = typeof PROBE_METHODS[number]

/** The fitted parameters, JSON-serialisable: what the store keeps and what export writes. */
export type ProbeState =
  | { method: 'logreg', C: number, mean: number[], std: number[], weights: number[][], bias: number[] }
  | { method: 'knn', k: number, examples: number[][], example_labels: number[], example_ids: number[] }
  | { method: 'centroid', temperature: number, centroids: number[][] }

export interface FittedProbe {
  /** class names, sorted; index = class index */
  labels: string[]
  /** embedding dimension D */
  dim: number
  state: ProbeState
}

export interface CrossValidationReport {
  /** e.g. "stratified-k-fold(k=3, seed=0)"; null when a class has a single example */
  scheme: string | null
  /** pooled held-out accuracy; for logreg at the selected C (chosen on the same folds, not nested) */
  accuracy: number | null
  /** logreg only: the L2 strength used (sklearn's C) and how it was chosen */
  C?: number
  C_selection?: string
}

export interface ProbeFit {
  probe: FittedProbe
  /** examples per label (a Map: labels are user input) */
  counts: Map<string, number>
  cv: CrossValidationReport
}

export interface FitOptions {
  /** seeds the folds; the same examples and seed give the same classifier */
  seed?: number
  knnK?: number
  /** row ids to report as kNN neighbours (the store's example ids); defaults to row numbers */
  exampleIds?: number[]
  /** false skips cross-validation (C = 1 for logreg); the few-shot protocol uses true, like the endpoint */
  crossValidate?: boolean
}

/** What a classifier is pinned to: the graph that made its embeddings and how they were pooled. */
export interface EmbeddingPin {
  model: string
  sha256: string
  pooling: 'cls' | 'mean'
  normalize: boolean
}

/** Sorted distinct labels and each example's class index. */
export function indexLabels (names: readonly string[]): { labels: string[], y: number[] } {
  const labels = [...new Set(names)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const index = new Map(labels.map((l, i) => [l, i]))
  return { labels, y: names.map((n) => index.get(n) as number) }
}

/**
 * Fits `method` on x (N, D) with one label name per row. Needs at least two classes.
 */
export function fitProbe (method: ProbeMethod, x: Matrix, names: readonly string[], options: FitOptions = {}): ProbeFit {
  if (names.length !== x.rows) throw new Error(`${x.rows} embeddings but ${names.length} labels. This is a bug.`)
  const { labels, y } = indexLabels(names)
  if (labels.length < 2) {
    throw new ApiError('CLASSIFIER_TOO_FEW_CLASSES', `a classifier needs examples of at least 2 labels; got ${labels.length} (${labels.join(', ')})`)
  }
  const K = labels.length
  const counts = new Map<string, number>()
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1)
  const seed = options.seed ?? 0
  const plan = options.crossValidate === false ? null : planFolds(y, K, seed)

  if (method === 'logreg') {
    let C = DEFAULT_C
    let accuracy: number | null = null
    if (plan !== null) {
      const selection = selectC(x, y, K, plan)
      C = selection.C
      accuracy = selection.score.accuracy
    }
    const scaler = fitStandardizer(x)
    const fit = fitLogreg(applyStandardizer(scaler, x), y, K, { C })
    return {
      probe: { labels, dim: x.cols, state: { method, C, mean: scaler.mean, std: scaler.std, weights: matrixToRows(fit.weights), bias: Array.from(fit.bias) } },
      counts,
      cv: { scheme: plan?.scheme ?? null, accuracy, C, C_selection: plan === null ? 'default (no cross-validation possible)' : 'cross-validation' }
    }
  }

  const probe = method === 'knn'
    ? knnProbe(x, y, labels, options.knnK ?? DEFAULT_KNN_K, options.exampleIds)
    : centroidProbe(x, y, labels)
  const accuracy = plan === null ? null : cvAccuracy(method, x, y, labels, plan, options.knnK ?? DEFAULT_KNN_K)
  return { probe, counts, cv: { scheme: plan?.scheme ?? null, accuracy } }
}

function knnProbe (x: Matrix, y: number[], labels: string[], k: number, exampleIds?: number[]): FittedProbe {
  const model = fitKnn(x, y, labels.length, k)
  return {
    labels,
    dim: x.cols,
    state: { method: 'knn', k: model.k, examples: matrixToRows(model.examples), example_labels: y, example_ids: exampleIds ?? y.map((_, i) => i) }
  }
}

function centroidProbe (x: Matrix, y: number[], labels: string[]): FittedProbe {
  const model = fitCentroid(x, y, labels.length)
  return { labels, dim: x.cols, state: { method: 'centroid', temperature: model.temperature, centroids: matrixToRows(model.centroids) } }
}

function cvAccuracy (method: 'knn' | 'centroid', x: Matrix, y: number[], labels: string[], plan: FoldPlan, k: number): number {
  return crossValidate(plan, y, (train, test) => {
    const xTrain = selectRows(x, train)
    const yTrain = train.map((i) => y[i])
    const probe = method === 'knn' ? knnProbe(xTrain, yTrain, labels, k) : centroidProbe(xTrain, yTrain, labels)
    return probabilities(probe, selectRows(x, test)).probabilities
  }).accuracy
}

interface RawPrediction {
  /** (N, K) */
  probabilities: Matrix
  /** (N, K) secondary ranking key (kNN: summed similarity), or null */
  tieBreak: Matrix | null
  /** kNN: per row, the nearest examples */
  neighbours: { id: number, label: string, similarity: number }[][] | null
}

function probabilities (probe: FittedProbe, x: Matrix): RawPrediction {
  if (x.cols !== probe.dim) {
    throw new ApiError('CLASSIFIER_EMBEDDING_INVALID', `the classifier expects ${probe.dim}-dimensional embeddings, got ${x.cols}`)
  }
  const s = probe.state
  if (s.method === 'logreg') {
    const model = { weights: matrixFromRows(s.weights, probe.dim), bias: Float64Array.from(s.bias) }
    return { probabilities: predictLogreg(model, applyStandardizer({ mean: s.mean, std: s.std }, x)), tieBreak: null, neighbours: null }
  }
  if (s.method === 'centroid') {
    return { probabilities: predictCentroid({ centroids: matrixFromRows(s.centroids, probe.dim), temperature: s.temperature }, x), tieBreak: null, neighbours: null }
  }
  const model = { k: s.k, examples: matrixFromRows(s.examples, probe.dim), labels: s.example_labels, numClasses: probe.labels.length }
  const p = predictKnn(model, x)
  return {
    probabilities: p.probabilities,
    tieBreak: p.similaritySums,
    neighbours: p.neighbours.map((row) => row.map((n) => ({ id: s.example_ids[n.index], label: probe.labels[s.example_labels[n.index]], similarity: n.similarity })))
  }
}

export interface LabelProbability { label: string, probability: number }

export interface Prediction {
  /** the top label, or null when its probability is below the abstain threshold */
  label: string | null
  abstained: boolean
  /** the topK labels, most probable first */
  top: LabelProbability[]
  /** kNN only: the nearest stored examples (provenance) */
  neighbours?: { id: number, label: string, similarity: number }[]
}

/** Ranks class indices of row i: by probability, then tie-break score, then label order. */
export function rankClasses (probs: Matrix, tieBreak: Matrix | null, i: number): number[] {
  const K = probs.cols
  const order = Array.from({ length: K }, (_, k) => k)
  return order.sort((a, b) =>
    probs.data[i * K + b] - probs.data[i * K + a] ||
    (tieBreak === null ? 0 : tieBreak.data[i * K + b] - tieBreak.data[i * K + a]) ||
    a - b)
}

/** Predicts x (N, D): top-k labels with probabilities; abstains when the best is below `threshold`. */
export function predictProbe (probe: FittedProbe, x: Matrix, options: { topK?: number, threshold?: number } = {}): Prediction[] {
  const topK = Math.max(1, Math.min(options.topK ?? 5, probe.labels.length))
  const raw = probabilities(probe, x)
  const out: Prediction[] = []
  for (let i = 0; i < x.rows; i++) {
    const ranked = rankClasses(raw.probabilities, raw.tieBreak, i)
    const top = ranked.slice(0, topK).map((k) => ({ label: probe.labels[k], probability: raw.probabilities.data[i * probe.labels.length + k] }))
    const abstained = options.threshold !== undefined && top[0].probability < options.threshold
    const prediction: Prediction = { label: abstained ? null : top[0].label, abstained, top }
    if (raw.neighbours !== null) prediction.neighbours = raw.neighbours[i]
    out.push(prediction)
  }
  return out
}

/** Ranked class indices (N rows, best first) for accuracy@k in the few-shot protocol. */
export function rankAll (probe: FittedProbe, x: Matrix): number[][] {
  const raw = probabilities(probe, x)
  return Array.from({ length: x.rows }, (_, i) => rankClasses(raw.probabilities, raw.tieBreak, i))
}

/** 409 CLASSIFIER_MODEL_MISMATCH unless the current embedding graph is the pinned one. */
export function assertSamePin (pin: EmbeddingPin, current: { model: string, sha256: string }): void {
  if (pin.sha256 !== current.sha256) {
    throw new ApiError('CLASSIFIER_MODEL_MISMATCH',
      `the classifier was fitted on embeddings of ${pin.model} (encoder sha256 ${pin.sha256.slice(0, 12)}…) but the request uses ${current.model} ` +
      `(encoder sha256 ${current.sha256.slice(0, 12)}…); re-embed it (POST /v1/classifiers/{id}/reembed, needs keep_images) or predict with the pinned model`)
  }
}

/** Embeddings and probes are stored as float32: a double beyond its range would come back as Infinity. */
function isFiniteFloat32 (v: number): boolean {
  return Number.isFinite(Math.fround(v))
}

/**
 * Checks an imported probe for internal consistency (shapes, finite numbers, label indices);
 * throws CLASSIFIER_IMPORT_INVALID naming the first problem.
 */
export function validateProbe (probe: FittedProbe): void {
  const fail = (detail: string): never => { throw new ApiError('CLASSIFIER_IMPORT_INVALID', detail) }
  const K = probe.labels.length
  const D = probe.dim
  if (K < 2) fail('a classifier needs at least 2 labels')
  if (new Set(probe.labels).size !== K) fail('labels must be distinct')
  const finiteRows = (rows: number[][], n: number | null, name: string): void => {
    if (n !== null && rows.length !== n) fail(`${name} has ${rows.length} rows, expected ${n}`)
    rows.forEach((r, i) => {
      if (r.length !== D) fail(`${name}[${i}] has ${r.length} values, expected dim ${D}`)
      if (!r.every(isFiniteFloat32)) fail(`${name}[${i}] holds a number that is not finite as float32 (the stored form; |v| < 3.4e38)`)
    })
  }
  const s = probe.state
  if (s.method === 'logreg') {
    finiteRows(s.weights, K, 'weights')
    finiteRows([s.mean, s.std], 2, 'mean/std')
    if (s.bias.length !== K || !s.bias.every(isFiniteFloat32)) fail(`bias must hold ${K} numbers finite as float32`)
    if (!s.std.every((v) => Math.fround(v) > 0)) fail('std values must be > 0 as float32 (at least 1.4e-45)')
    if (!(s.C > 0)) fail('C must be > 0')
  } else if (s.method === 'centroid') {
    finiteRows(s.centroids, K, 'centroids')
    if (!(s.temperature > 0)) fail('temperature must be > 0')
  } else {
    finiteRows(s.examples, null, 'examples')
    if (s.example_labels.length !== s.examples.length || s.example_ids.length !== s.examples.length) fail('examples, example_labels and example_ids must have the same length')
    if (!s.example_labels.every((k) => Number.isInteger(k) && k >= 0 && k < K)) fail(`example_labels must be integers in [0, ${K})`)
    if (!s.example_ids.every((id) => Number.isInteger(id) && id >= -(2 ** 31) && id < 2 ** 31)) fail('example_ids must be 32-bit integers')
    if (!(Number.isInteger(s.k) && s.k >= 1)) fail('k must be a positive integer')
  }
}

/** A copy of x (N, D) from plain arrays, throwing CLASSIFIER_EMBEDDING_INVALID on bad rows. */
export function embeddingsMatrix (rows: number[][], dim: number): Matrix {
  rows.forEach((r, i) => {
    if (r.length !== dim) throw new ApiError('CLASSIFIER_EMBEDDING_INVALID', `embedding ${i} has ${r.length} values; the model's embeddings have ${dim}`)
    if (!r.every(isFiniteFloat32)) throw new ApiError('CLASSIFIER_EMBEDDING_INVALID', `embedding ${i} holds a number that is not finite as float32 (embeddings are stored as float32; |v| < 3.4e38)`)
  })
  return rows.length === 0 ? createMatrix(0, dim) : matrixFromRows(rows, dim)
}

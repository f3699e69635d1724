/**
 * Stratified k-fold cross-validation: fold assignment, accuracy of any probe over the folds, and the
 * choice of logistic regression's L2 strength C on a small grid (the CLIP README's advice: sweep C).
 *
 * Scheme: k = min(5, smallest class count). Within each class the examples are shuffled with the seed
 * and dealt round-robin to the folds, continuing the deal across classes, so every fold holds at least
 * one example of every class and fold sizes differ by at most one. No cross-validation is possible
 * when a class has a single example: the scheme and accuracy are then null.
 */
import { selectRows, type Matrix } from './matrix.js'
import { fitLogreg, predictLogreg, type LogregModel } from './probes/logreg.js'
import { applyStandardizer, fitStandardizer } from './standardize.js'
import { createRandom, indicesByClass, shuffled } from './random.js'

export const MAX_FOLDS = 5
/** L2 grid (sklearn's C: inverse strength); sklearn's default 1 is used when CV is impossible. */
export const C_GRID = [0.001, 0.01, 0.1, 1, 10] as const
export const DEFAULT_C = 1
/**
 * Fold fits only rank the grid by held-out accuracy, so they stop earlier than the final fit (1e-7):
 * about half the L-BFGS iterations, the same choice of C in practice.
 */
export const CV_GRADIENT_TOLERANCE = 1e-5

export interface FoldPlan {
  k: number
  /** fold of each example (N) */
  foldOf: number[]
  /** e.g. "stratified-k-fold(k=3, seed=0)" */
  scheme: string
}

/** null when some class has fewer than 2 examples. */
export function planFolds (y: readonly number[], numClasses: number, seed: number): FoldPlan | null {
  const groups = indicesByClass(y, numClasses)
  const smallest = Math.min(...groups.map((g) => g.length))
  if (smallest < 2) return null
  const k = Math.min(MAX_FOLDS, smallest)
  const random = createRandom(seed)
  const foldOf = new Array<number>(y.length).fill(-1)
  let next = 0
  for (const group of groups) {
    for (const i of shuffled(group, random)) { foldOf[i] = next; next = (next + 1) % k }
  }
  return { k, foldOf, scheme: `stratified-k-fold(k=${k}, seed=${seed})` }
}

/** Splits row indices into the training and held-out rows of fold f. */
export function foldIndices (plan: FoldPlan, f: number): { train: number[], test: number[] } {
  const train: number[] = []
  const test: number[] = []
  plan.foldOf.forEach((fold, i) => (fold === f ? test : train).push(i))
  return { train, test }
}

/** Index of the largest value in row i of probs (N, K); the lower index wins ties. */
export function argmaxRow (probs: Matrix, i: number): number {
  let best = 0
  for (let k = 1; k < probs.cols; k++) if (probs.data[i * probs.cols + k] > probs.data[i * probs.cols + best]) best = k
  return best
}

export interface FoldScore {
  /** share of held-out examples whose top label is right */
  accuracy: number
  /** mean -log p(true label) over held-out examples */
  logLoss: number
}

/**
 * Runs `fitPredict(trainRows, heldOutRows)` -> probabilities (heldOut, K) on every fold and pools the
 * held-out predictions.
 */
export function crossValidate (plan: FoldPlan, y: readonly number[], fitPredict: (train: number[], test: number[]) => Matrix): FoldScore {
  let correct = 0
  let logLoss = 0
  for (let f = 0; f < plan.k; f++) {
    const { train, test } = foldIndices(plan, f)
    const probs = fitPredict(train, test)
    test.forEach((row, i) => {
      if (argmaxRow(probs, i) === y[row]) correct++
      logLoss -= Math.log(Math.max(probs.data[i * probs.cols + y[row]], 1e-15))
    })
  }
  return { accuracy: correct / y.length, logLoss: logLoss / y.length }
}

export interface CSelection {
  C: number
  score: FoldScore
  /** per grid value, in grid order */
  grid: { C: number, accuracy: number, logLoss: number }[]
}

/**
 * Picks C on the folds: highest pooled accuracy, then lowest log loss, then the smaller C. The
 * standardiser is refitted inside each fold so held-out rows never inform it. Along the grid each
 * fold warm-starts from its solution at the previous C.
 */
export function selectC (x: Matrix, y: readonly number[], numClasses: number, plan: FoldPlan, grid: readonly number[] = C_GRID): CSelection {
  const sorted = [...grid].sort((a, b) => a - b)
  const folds = Array.from({ length: plan.k }, (_, f) => {
    const { train, test } = foldIndices(plan, f)
    const xTrain = selectRows(x, train)
    const scaler = fitStandardizer(xTrain)
    return {
      train,
      test,
      xTrain: applyStandardizer(scaler, xTrain),
      xTest: applyStandardizer(scaler, selectRows(x, test)),
      yTrain: train.map((i) => y[i]),
      warm: undefined as LogregModel | undefined
    }
  })
  const results = sorted.map((C) => {
    const score = crossValidate(plan, y, (_train, test) => {
      const fold = folds.find((fd) => fd.test[0] === test[0])
      if (fold === undefined) throw new Error('fold lookup failed. This is a bug.')
      const fit = fitLogreg(fold.xTrain, fold.yTrain, numClasses, { C, init: fold.warm, gradientTolerance: CV_GRADIENT_TOLERANCE, maxIterations: 500 })
      fold.warm = fit
      return predictLogreg(fit, fold.xTest)
    })
    return { C, accuracy: score.accuracy, logLoss: score.logLoss }
  })
  let best = results[0]
  for (const r of results.slice(1)) {
    if (r.accuracy > best.accuracy || (r.accuracy === best.accuracy && r.logLoss < best.logLoss)) best = r
  }
  return { C: best.C, score: { accuracy: best.accuracy, logLoss: best.logLoss }, grid: results }
}

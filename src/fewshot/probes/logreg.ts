/**
 * Multinomial logistic regression with an L2 penalty on the weights (not the intercepts), fitted with
 * L-BFGS. Inputs are expected standardised (src/fewshot/standardize.ts).
 *
 * Objective, the same minimiser as scikit-learn's LogisticRegression(C, lbfgs, fit_intercept=True):
 *   f(W, b) = 1/N * sum_i [logsumexp(z_i) - z_i[y_i]] + 1/(2 C N) * |W|^2,   z_i = W x_i + b
 * with W (K, D), b (K), x_i (D). One weight row per class (no reference class), as sklearn's
 * multinomial solver has; test/fewshot/probes/logreg.test.ts checks the probabilities against it.
 */
import { minimizeLbfgs } from '../lbfgs.js'
import { createMatrix, type Matrix } from '../matrix.js'

export interface LogregModel {
  /** (K, D) */
  weights: Matrix
  /** (K) */
  bias: Float64Array
}

export interface LogregFit extends LogregModel {
  iterations: number
  converged: boolean
}

export interface LogregOptions {
  /** inverse L2 strength, as sklearn's C */
  C: number
  /** warm start (e.g. the solution at the previous C of a grid) */
  init?: LogregModel
  gradientTolerance?: number
  maxIterations?: number
}

/** logits (K) -> probabilities in place (numerically stable softmax); returns logsumexp. */
function softmaxInPlace (z: Float64Array): number {
  let max = -Infinity
  for (let k = 0; k < z.length; k++) max = Math.max(max, z[k])
  let sum = 0
  for (let k = 0; k < z.length; k++) { z[k] = Math.exp(z[k] - max); sum += z[k] }
  for (let k = 0; k < z.length; k++) z[k] /= sum
  return max + Math.log(sum)
}

/**
 * Fits on x (N, D) with labels y (N) in [0, K).
 */
export function fitLogreg (x: Matrix, y: readonly number[], numClasses: number, options: LogregOptions): LogregFit {
  const { rows: n, cols: d, data } = x
  const K = numClasses
  if (y.length !== n) throw new RangeError(`${n} rows but ${y.length} labels`)
  if (!(options.C > 0)) throw new RangeError(`C must be > 0, got ${options.C}`)
  const penalty = 1 / (options.C * n) // gradient of 1/(2CN)|W|^2 is W/(CN)
  const wSize = K * d
  const z = new Float64Array(K)

  // theta = [W (K*D, row-major) | b (K)]
  const objective = (theta: Float64Array, grad: Float64Array): number => {
    grad.fill(0)
    let loss = 0
    for (let i = 0; i < n; i++) {
      const xi = i * d
      for (let k = 0; k < K; k++) {
        let s = theta[wSize + k]
        const wk = k * d
        for (let j = 0; j < d; j++) s += theta[wk + j] * data[xi + j]
        z[k] = s
      }
      const trueLogit = z[y[i]]
      const lse = softmaxInPlace(z) // z now holds probabilities p_i (K)
      loss += lse - trueLogit // -log p_i[y_i], exact even when p underflows
      for (let k = 0; k < K; k++) {
        const r = (z[k] - (k === y[i] ? 1 : 0)) / n
        if (r === 0) continue
        const wk = k * d
        for (let j = 0; j < d; j++) grad[wk + j] += r * data[xi + j]
        grad[wSize + k] += r
      }
    }
    let sq = 0
    for (let t = 0; t < wSize; t++) { sq += theta[t] * theta[t]; grad[t] += penalty * theta[t] }
    return loss / n + 0.5 * penalty * sq
  }

  const theta0 = new Float64Array(wSize + K)
  if (options.init !== undefined) {
    theta0.set(options.init.weights.data, 0)
    theta0.set(options.init.bias, wSize)
  }
  const result = minimizeLbfgs(objective, theta0, {
    gradientTolerance: options.gradientTolerance ?? 1e-7,
    maxIterations: options.maxIterations ?? 2000
  })
  const weights = createMatrix(K, d)
  weights.data.set(result.x.subarray(0, wSize))
  return { weights, bias: Float64Array.from(result.x.subarray(wSize)), iterations: result.iterations, converged: result.converged }
}

/** x (N, D) standardised -> probabilities (N, K). */
export function predictLogreg (model: LogregModel, x: Matrix): Matrix {
  const { weights, bias } = model
  const K = weights.rows
  const d = weights.cols
  if (x.cols !== d) throw new RangeError(`expected ${d} dimensions, got ${x.cols}`)
  const out = createMatrix(x.rows, K)
  const z = new Float64Array(K)
  for (let i = 0; i < x.rows; i++) {
    for (let k = 0; k < K; k++) {
      let s = bias[k]
      for (let j = 0; j < d; j++) s += weights.data[k * d + j] * x.data[i * d + j]
      z[k] = s
    }
    softmaxInPlace(z)
    out.data.set(z, i * K)
  }
  return out
}

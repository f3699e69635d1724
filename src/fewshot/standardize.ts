/**
 * Per-dimension standardisation fitted on the training examples: x' = (x - mean) / std, with the
 * population std (ddof = 0) as scikit-learn's StandardScaler uses, and std = 1 for a constant column.
 * This is the BatchNorm(affine=False) of MAE's linear probe, frozen after the fit.
 */
import { createMatrix, type Matrix } from './matrix.js'

export interface Standardizer {
  /** (D) */
  mean: number[]
  /** (D), never 0 */
  std: number[]
}

/** Below this std a column counts as constant (StandardScaler keeps its scale at 1 too). */
const CONSTANT_STD = 1e-12

export function fitStandardizer (x: Matrix): Standardizer {
  const { rows: n, cols: d, data } = x
  const mean = new Array<number>(d).fill(0)
  const variance = new Array<number>(d).fill(0)
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += data[i * d + j] / n
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const c = data[i * d + j] - mean[j]
      variance[j] += c * c / n
    }
  }
  const std = variance.map((v) => {
    const s = Math.sqrt(v)
    return s < CONSTANT_STD ? 1 : s
  })
  return { mean, std }
}

/** x (N, D) -> standardised copy (N, D). */
export function applyStandardizer (s: Standardizer, x: Matrix): Matrix {
  if (x.cols !== s.mean.length) throw new RangeError(`expected ${s.mean.length} dimensions, got ${x.cols}`)
  const out = createMatrix(x.rows, x.cols)
  const d = x.cols
  for (let i = 0; i < x.rows; i++) {
    for (let j = 0; j < d; j++) out.data[i * d + j] = (x.data[i * d + j] - s.mean[j]) / s.std[j]
  }
  return out
}

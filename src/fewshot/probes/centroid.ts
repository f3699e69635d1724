/**
 * Nearest class centroid with cosine similarity: each class is the mean of its L2-normalised examples,
 * renormalised. Probabilities are softmax(cosine / temperature); the temperature only shapes the
 * probabilities (the predicted order is the cosine order).
 */
import { createMatrix, type Matrix } from '../matrix.js'
import { l2Normalize } from './knn.js'

/** 0.1 makes a cosine gap of 0.1 worth a factor e in odds: a readable spread for embeddings. */
export const CENTROID_TEMPERATURE = 0.1

export interface CentroidModel {
  /** (K, D) unit-norm class centroids */
  centroids: Matrix
  temperature: number
}

export function fitCentroid (x: Matrix, y: readonly number[], numClasses: number): CentroidModel {
  if (y.length !== x.rows) throw new RangeError(`${x.rows} rows but ${y.length} labels`)
  const unit = l2Normalize(x)
  const sums = createMatrix(numClasses, x.cols)
  for (let i = 0; i < x.rows; i++) {
    for (let j = 0; j < x.cols; j++) sums.data[y[i] * x.cols + j] += unit.data[i * x.cols + j]
  }
  return { centroids: l2Normalize(sums), temperature: CENTROID_TEMPERATURE }
}

/** x (N, D) -> probabilities (N, K). */
export function predictCentroid (model: CentroidModel, x: Matrix): Matrix {
  const { centroids, temperature } = model
  const K = centroids.rows
  const d = centroids.cols
  if (x.cols !== d) throw new RangeError(`expected ${d} dimensions, got ${x.cols}`)
  const q = l2Normalize(x)
  const out = createMatrix(x.rows, K)
  for (let i = 0; i < x.rows; i++) {
    let max = -Infinity
    for (let k = 0; k < K; k++) {
      let s = 0
      for (let j = 0; j < d; j++) s += q.data[i * d + j] * centroids.data[k * d + j]
      out.data[i * K + k] = s / temperature
      max = Math.max(max, s / temperature)
    }
    let sum = 0
    for (let k = 0; k < K; k++) { const e = Math.exp(out.data[i * K + k] - max); out.data[i * K + k] = e; sum += e }
    for (let k = 0; k < K; k++) out.data[i * K + k] /= sum
  }
  return out
}

/**
 * Cosine k-nearest neighbours (k = 3 by default, as the tfjs-models knn-classifier). The probability
 * of a label is its share of the k votes; ties in votes are broken by the summed cosine similarity.
 * Examples are stored L2-normalised, so a similarity is one dot product.
 */
import { createMatrix, rowOf, type Matrix } from '../matrix.js'

export const DEFAULT_KNN_K = 3

export interface KnnModel {
  k: number
  /** (M, D) L2-normalised examples */
  examples: Matrix
  /** (M) class index of each example */
  labels: number[]
  numClasses: number
}

export interface KnnNeighbour {
  /** row of the example in `examples` */
  index: number
  similarity: number
}

/** Rows divided by their L2 norm (a zero row stays zero). */
export function l2Normalize (x: Matrix): Matrix {
  const out = createMatrix(x.rows, x.cols)
  for (let i = 0; i < x.rows; i++) {
    const row = rowOf(x, i)
    let sq = 0
    for (let j = 0; j < row.length; j++) sq += row[j] * row[j]
    const norm = Math.sqrt(sq)
    for (let j = 0; j < row.length; j++) out.data[i * x.cols + j] = norm > 0 ? row[j] / norm : 0
  }
  return out
}

export function fitKnn (x: Matrix, y: readonly number[], numClasses: number, k = DEFAULT_KNN_K): KnnModel {
  if (y.length !== x.rows) throw new RangeError(`${x.rows} rows but ${y.length} labels`)
  return { k: Math.max(1, Math.min(k, x.rows)), examples: l2Normalize(x), labels: y.slice(), numClasses }
}

export interface KnnPrediction {
  /** (N, K) vote shares */
  probabilities: Matrix
  /** (N, K) summed similarity of each label's voters: breaks ties between equal vote shares */
  similaritySums: Matrix
  /** (N, k) nearest examples, most similar first */
  neighbours: KnnNeighbour[][]
}

/** x (N, D) -> vote shares, tie-break sums and neighbours. */
export function predictKnn (model: KnnModel, x: Matrix): KnnPrediction {
  const { examples, labels, numClasses: K, k } = model
  if (x.cols !== examples.cols) throw new RangeError(`expected ${examples.cols} dimensions, got ${x.cols}`)
  const q = l2Normalize(x)
  const probabilities = createMatrix(x.rows, K)
  const similaritySums = createMatrix(x.rows, K)
  const neighbours: KnnNeighbour[][] = []
  const d = x.cols
  for (let i = 0; i < q.rows; i++) {
    const sims: KnnNeighbour[] = []
    for (let m = 0; m < examples.rows; m++) {
      let s = 0
      for (let j = 0; j < d; j++) s += q.data[i * d + j] * examples.data[m * d + j]
      sims.push({ index: m, similarity: s })
    }
    sims.sort((a, b) => b.similarity - a.similarity || a.index - b.index)
    const nearest = sims.slice(0, k)
    for (const n of nearest) {
      probabilities.data[i * K + labels[n.index]] += 1 / nearest.length
      similaritySums.data[i * K + labels[n.index]] += n.similarity
    }
    neighbours.push(nearest)
  }
  return { probabilities, similaritySums, neighbours }
}

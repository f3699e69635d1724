/**
 * A dense row-major matrix of float64, the one numeric container of the few-shot probes.
 * Rows are examples (N), columns are embedding dimensions (D) or classes (K).
 */
export interface Matrix {
  rows: number
  cols: number
  /** (rows * cols) row-major */
  data: Float64Array
}

export function createMatrix (rows: number, cols: number): Matrix {
  return { rows, cols, data: new Float64Array(rows * cols) }
}

/** Copies equal-length vectors into one (N, D) matrix; throws on ragged input. */
export function matrixFromRows (rows: ArrayLike<number>[], cols?: number): Matrix {
  const d = cols ?? (rows.length > 0 ? rows[0].length : 0)
  const m = createMatrix(rows.length, d)
  rows.forEach((row, i) => {
    if (row.length !== d) throw new RangeError(`row ${i} has ${row.length} values, expected ${d}`)
    for (let j = 0; j < d; j++) m.data[i * d + j] = row[j]
  })
  return m
}

/** A view (no copy) of row i, shape (cols). */
export function rowOf (m: Matrix, i: number): Float64Array {
  return m.data.subarray(i * m.cols, (i + 1) * m.cols)
}

/** The rows at `indices`, copied, shape (indices.length, cols). */
export function selectRows (m: Matrix, indices: readonly number[]): Matrix {
  const out = createMatrix(indices.length, m.cols)
  indices.forEach((src, i) => out.data.set(rowOf(m, src), i * m.cols))
  return out
}

export function matrixToRows (m: Matrix): number[][] {
  const out: number[][] = []
  for (let i = 0; i < m.rows; i++) out.push(Array.from(rowOf(m, i)))
  return out
}

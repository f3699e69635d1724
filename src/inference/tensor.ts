/**
 * A plain tensor, independent of onnxruntime, so the batcher, features and tests do not import it.
 * `data` is row-major; dims[0] is the batch axis N wherever a tensor passes through the batcher.
 */
export type TensorType = 'float32' | 'int64'

export interface Tensor {
  type: TensorType
  data: Float32Array | BigInt64Array
  dims: number[]
}

export function float32Tensor (data: Float32Array, dims: number[]): Tensor {
  checkSize(data.length, dims)
  return { type: 'float32', data, dims }
}

export function int64Tensor (data: BigInt64Array | number[], dims: number[]): Tensor {
  const values = data instanceof BigInt64Array ? data : BigInt64Array.from(data, (v) => BigInt(v))
  checkSize(values.length, dims)
  return { type: 'int64', data: values, dims }
}

export function tensorSize (dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1)
}

function checkSize (length: number, dims: number[]): void {
  if (length !== tensorSize(dims)) throw new Error(`tensor of ${length} values cannot have dims [${dims.join(', ')}]. This is a bug.`)
}

/** Row n (along dims[0]) of a tensor, as a new tensor with dims[0] = 1 (copied). */
export function sliceRow (tensor: Tensor, n: number): Tensor {
  const rowSize = tensorSize(tensor.dims.slice(1))
  const data = tensor.data.slice(n * rowSize, (n + 1) * rowSize)
  return { type: tensor.type, data, dims: [1, ...tensor.dims.slice(1)] }
}

/** Concatenates tensors along dims[0]; all must share type and the other dims. */
export function concatRows (tensors: Tensor[]): Tensor {
  const first = tensors[0]
  const rest = first.dims.slice(1)
  const rowSize = tensorSize(rest)
  const rows = tensors.reduce((a, t) => a + t.dims[0], 0)
  const data = first.type === 'float32' ? new Float32Array(rows * rowSize) : new BigInt64Array(rows * rowSize)
  let offset = 0
  for (const t of tensors) {
    if (t.type !== first.type || t.dims.length !== first.dims.length || t.dims.slice(1).some((d, i) => d !== rest[i])) {
      throw new Error(`cannot concatenate [${t.dims.join(', ')}] ${t.type} with [${first.dims.join(', ')}] ${first.type}. This is a bug.`)
    }
    ;(data as Float32Array).set(t.data as Float32Array, offset)
    offset += t.data.length
  }
  return { type: first.type, data, dims: [rows, ...rest] }
}

/** A key equal for tensors that can share a batch: same type and same dims after the batch axis. */
export function shapeKey (feeds: Record<string, Tensor>): string {
  return Object.keys(feeds).sort().map((k) => `${k}:${feeds[k].type}:${feeds[k].dims.slice(1).join('x')}`).join('|')
}

/** onnxruntime's outputs as plain tensors; bundles produce only float32 and int64. */
export function toPlainOutputs (outputs: Array<[name: string, type: string, data: unknown, dims: readonly number[]]>): Record<string, Tensor> {
  const out: Record<string, Tensor> = {}
  for (const [name, type, data, dims] of outputs) {
    if (type !== 'float32' && type !== 'int64') throw new Error(`output ${name} has type ${type}; bundles use float32 and int64. This is a bug.`)
    out[name] = { type, data: data as Float32Array | BigInt64Array, dims: [...dims] }
  }
  return out
}

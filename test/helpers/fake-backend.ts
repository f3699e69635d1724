/**
 * An InferenceBackend for batcher and route tests: output `y` = input `x` * 2 (float32, any shape),
 * an optional delay per run, and a log of the batch sizes it ran. `gate` lets a test hold a run open.
 */
import type { InferenceBackend } from '../../src/inference/backend.js'
import type { Tensor } from '../../src/inference/tensor.js'

export class FakeBackend implements InferenceBackend {
  readonly executionProvider = 'fake'
  readonly inputNames = ['x']
  readonly outputNames = ['y']
  /** batch size (dims[0]) of every run, in order */
  readonly runs: number[] = []
  /** first value of each row of every run, in order */
  readonly rowsSeen: number[][] = []
  private gates: Array<() => void> = []
  failNext: Error | undefined

  constructor (private readonly delayMs = 0, private readonly gated = false) {}

  /** Lets the oldest gated run finish. */
  release (): void {
    this.gates.shift()?.()
  }

  get waiting (): number { return this.gates.length }

  async run (feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    const x = feeds.x
    const n = x.dims[0]
    this.runs.push(n)
    const rowSize = x.data.length / n
    this.rowsSeen.push(Array.from({ length: n }, (_, i) => Number(x.data[i * rowSize])))
    if (this.gated) await new Promise<void>((resolve) => this.gates.push(resolve))
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs))
    if (this.failNext !== undefined) {
      const error = this.failNext
      this.failNext = undefined
      throw error
    }
    const y = Float32Array.from(x.data as Float32Array, (v) => v * 2)
    return { y: { type: 'float32', data: y, dims: [...x.dims] } }
  }

  async close (): Promise<void> {}
}

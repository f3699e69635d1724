/**
 * Dynamic batching for one graph (style rule 9): images from concurrent requests are queued and run
 * together, up to maxBatchSize per call, waiting at most maxWaitMs for a batch to fill.
 *
 * - The queue is bounded (in images): a request that does not fit is refused whole with QUEUE_FULL
 *   (503 + Retry-After) before anything is queued.
 * - Every request carries an AbortSignal (client gone) and a deadline; either one settles the request at
 *   once (REQUEST_ABORTED / DEADLINE_EXCEEDED) and removes its images that have not started.
 * - Only images whose non-batch dims agree share a batch (e.g. the same K of ids_keep), so a batch is
 *   always one well-formed tensor per input.
 * The batcher knows nothing of HTTP or onnxruntime: it works on InferenceBackend only.
 */
import { ApiError } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { InferenceBackend } from './backend.js'
import { concatRows, shapeKey, sliceRow, type Tensor } from './tensor.js'

export interface BatcherOptions {
  maxBatchSize: number
  maxWaitMs: number
  /** most images waiting (not yet running) */
  maxQueue: number
  retryAfterSeconds: number
  /** metric labels */
  model: string
  graph: string
}

export interface RunOptions {
  /** aborted when the client disconnects: queued work is dropped */
  signal?: AbortSignal
  /** absolute time (Date.now() ms) after which the request fails with DEADLINE_EXCEEDED */
  deadline?: number
}

export interface RunResult {
  /** outputs for the submitted rows, in order, batch axis first */
  outputs: Record<string, Tensor>
  /** longest time one of the rows waited in the queue */
  queueMs: number
  /** summed run time of the batches that carried the rows */
  inferenceMs: number
}

interface Job {
  rows: number
  remaining: number
  results: Array<Record<string, Tensor> | undefined>
  queueMs: number
  inferenceMs: number
  settled: boolean
  resolve: (r: RunResult) => void
  reject: (e: unknown) => void
}

interface Entry {
  job: Job
  row: number
  feeds: Record<string, Tensor> // each with dims[0] = 1
  key: string
  enqueuedAt: number
}

export class Batcher {
  private queue: Entry[] = []
  private running = false
  private timer: NodeJS.Timeout | undefined
  private idleWaiters: Array<() => void> = []

  constructor (private readonly backend: InferenceBackend, private readonly options: BatcherOptions, private readonly metrics?: Metrics) {}

  /** images waiting, not counting a batch that is running */
  get depth (): number { return this.queue.length }

  /** Queues N rows (dims[0] of every feed) and resolves with their outputs. */
  submit (feeds: Record<string, Tensor>, runOptions: RunOptions = {}): Promise<RunResult> {
    const names = Object.keys(feeds)
    if (names.length === 0) return Promise.reject(new Error('no feeds. This is a bug.'))
    const rows = feeds[names[0]].dims[0]
    if (names.some((n) => feeds[n].dims[0] !== rows)) return Promise.reject(new Error('feeds disagree on the batch axis. This is a bug.'))
    const { signal, deadline } = runOptions
    if (signal?.aborted === true) return Promise.reject(new ApiError('REQUEST_ABORTED', 'the client disconnected'))
    if (deadline !== undefined && deadline <= Date.now()) return Promise.reject(new ApiError('DEADLINE_EXCEEDED', 'the deadline passed before inference was queued'))
    if (this.queue.length + rows > this.options.maxQueue) {
      return Promise.reject(new ApiError('QUEUE_FULL', `the ${this.options.graph} queue of ${this.options.model} holds ${this.queue.length} of ${this.options.maxQueue} images; ${rows} more do not fit`,
        { headers: { 'retry-after': String(this.options.retryAfterSeconds) } }))
    }

    return new Promise<RunResult>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const onAbort = (): void => fail(new ApiError('REQUEST_ABORTED', 'the client disconnected; its queued images were dropped'))
      const cleanup = (): void => {
        if (timer !== undefined) clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      const job: Job = {
        rows,
        remaining: rows,
        results: new Array(rows),
        queueMs: 0,
        inferenceMs: 0,
        settled: false,
        resolve: (r) => { cleanup(); resolve(r) },
        reject: (e) => { cleanup(); reject(e) }
      }
      const fail = (error: ApiError): void => {
        if (job.settled) return
        job.settled = true
        this.queue = this.queue.filter((e) => e.job !== job) // drop its images that have not started
        this.updateDepth()
        job.reject(error)
        this.notifyIdle()
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      if (deadline !== undefined) {
        timer = setTimeout(() => fail(new ApiError('DEADLINE_EXCEEDED', `no answer within the request deadline (${this.options.graph} queue depth ${this.queue.length})`)), deadline - Date.now())
      }
      const now = performance.now()
      for (let row = 0; row < rows; row++) {
        const rowFeeds: Record<string, Tensor> = {}
        for (const n of names) rowFeeds[n] = rows === 1 ? feeds[n] : sliceRow(feeds[n], row)
        this.queue.push({ job, row, feeds: rowFeeds, key: shapeKey(rowFeeds), enqueuedAt: now })
      }
      this.updateDepth()
      this.schedule()
    })
  }

  /** Resolves once nothing is queued or running (used by graceful shutdown). */
  drain (): Promise<void> {
    if (this.queue.length === 0 && !this.running) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  private schedule (): void {
    if (this.running || this.queue.length === 0) return
    const waited = performance.now() - this.queue[0].enqueuedAt
    if (this.queue.length >= this.options.maxBatchSize || waited >= this.options.maxWaitMs) {
      if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined }
      void this.runNext()
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => { this.timer = undefined; this.schedule() }, this.options.maxWaitMs - waited)
    }
  }

  /** Takes the oldest image and up to maxBatchSize - 1 more of the same shape, and runs them. */
  private async runNext (): Promise<void> {
    this.running = true
    const key = this.queue[0].key
    const batch: Entry[] = []
    const rest: Entry[] = []
    for (const entry of this.queue) {
      if (batch.length < this.options.maxBatchSize && entry.key === key) batch.push(entry)
      else rest.push(entry)
    }
    this.queue = rest
    this.updateDepth()
    try {
      const names = Object.keys(batch[0].feeds)
      const feeds: Record<string, Tensor> = {}
      for (const n of names) feeds[n] = batch.length === 1 ? batch[0].feeds[n] : concatRows(batch.map((e) => e.feeds[n]))
      const start = performance.now()
      const outputs = await this.backend.run(feeds)
      const inferenceMs = performance.now() - start
      this.observe(batch, start, inferenceMs)
      const seen = new Set<Job>()
      batch.forEach((entry, i) => {
        const job = entry.job
        if (job.settled) return // aborted or expired while running: result dropped
        const row: Record<string, Tensor> = {}
        for (const [name, t] of Object.entries(outputs)) row[name] = batch.length === 1 ? t : sliceRow(t, i)
        job.results[entry.row] = row
        job.queueMs = Math.max(job.queueMs, start - entry.enqueuedAt)
        if (!seen.has(job)) { seen.add(job); job.inferenceMs += inferenceMs }
        if (--job.remaining === 0) {
          job.settled = true
          const results = job.results as Array<Record<string, Tensor>>
          const merged: Record<string, Tensor> = {}
          for (const name of Object.keys(outputs)) merged[name] = job.rows === 1 ? results[0][name] : concatRows(results.map((r) => r[name]))
          job.resolve({ outputs: merged, queueMs: job.queueMs, inferenceMs: job.inferenceMs })
        }
      })
    } catch (error) {
      for (const entry of batch) {
        if (entry.job.settled) continue
        entry.job.settled = true
        this.queue = this.queue.filter((e) => e.job !== entry.job)
        entry.job.reject(error)
      }
      this.updateDepth()
    } finally {
      this.running = false
      this.schedule()
      this.notifyIdle()
    }
  }

  private observe (batch: Entry[], start: number, inferenceMs: number): void {
    if (this.metrics === undefined) return
    const labels = { model: this.options.model, graph: this.options.graph }
    this.metrics.batchSize.observe(labels, batch.length)
    this.metrics.inferenceDuration.observe(labels, inferenceMs / 1000)
    for (const e of batch) this.metrics.queueWait.observe(labels, (start - e.enqueuedAt) / 1000)
  }

  private updateDepth (): void {
    this.metrics?.queueDepth.set({ model: this.options.model, graph: this.options.graph }, this.queue.length)
  }

  private notifyIdle (): void {
    if (this.queue.length > 0 || this.running) return
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const w of waiters) w()
  }
}

/**
 * Runs few-shot fits (fitProbe) on one long-lived worker thread, one fit at a time in arrival order,
 * so that a large fit never blocks the event loop that serves every other request. One worker is
 * enough: a fit is single-threaded, and onnxruntime wants the remaining cores for inference.
 *
 * Bounded: at most `maxQueued` fits wait behind the running one (beyond it 503
 * CLASSIFIER_FIT_QUEUE_FULL with Retry-After), a running fit longer than `timeoutMs` is stopped (504
 * CLASSIFIER_FIT_TIMEOUT), and a fit whose `signal` aborts (its client went away) leaves the queue or,
 * when running, is stopped (499 REQUEST_ABORTED). A fit is plain synchronous code in the worker, so
 * stopping it means terminating the worker; the next fit starts a fresh one (about 0.3 s under tsx).
 * An ApiError thrown inside the fit (e.g. CLASSIFIER_TOO_FEW_CLASSES) comes back as the same ApiError.
 */
import { Worker } from 'node:worker_threads'
import { ApiError, type ErrorCode } from '../errors.js'
import { workerEntry } from '../worker-entry.js'
import type { FitOptions, ProbeFit, ProbeMethod } from './classifiers.js'
import type { Matrix } from './matrix.js'

export interface FitJob {
  id: number
  method: ProbeMethod
  rows: number
  cols: number
  data: Float64Array
  names: string[]
  options: FitOptions
}

export type FitReply =
  | { id: number, ok: true, fit: ProbeFit }
  | { id: number, ok: false, code?: ErrorCode, message: string }
  | { ready: true }

export interface FitRunnerOptions {
  /** fits waiting behind the running one (default: unbounded) */
  maxQueued?: number
  /** longest running time of one fit (default: none) */
  timeoutMs?: number
  /** Retry-After of CLASSIFIER_FIT_QUEUE_FULL */
  retryAfterSeconds?: number
}

interface Queued {
  job: FitJob
  resolve: (fit: ProbeFit) => void
  reject: (error: Error) => void
  signal?: AbortSignal
  onAbort?: () => void
}

export class FitRunner {
  private worker: Worker | undefined
  private nextId = 1
  private readonly waiting: Queued[] = []
  private running: { entry: Queued, timer?: NodeJS.Timeout } | undefined
  /** the worker has loaded its modules (the deadline of its first fit starts then) */
  private workerReady = false
  private closed = false

  constructor (private readonly options: FitRunnerOptions = {}) {}

  /** fits waiting (not counting the running one) */
  get queued (): number { return this.waiting.length }
  get busy (): boolean { return this.running !== undefined }

  /** Fits `method` on x (N, D) with one label per row; the matrix is copied to the worker. */
  async fit (method: ProbeMethod, x: Matrix, names: readonly string[], options: FitOptions = {}, run: { signal?: AbortSignal } = {}): Promise<ProbeFit> {
    if (this.closed) throw new Error('the fit runner is closed')
    if (run.signal?.aborted === true) throw aborted()
    if (this.running !== undefined && this.waiting.length >= (this.options.maxQueued ?? Infinity)) {
      throw new ApiError('CLASSIFIER_FIT_QUEUE_FULL', `${this.waiting.length} fits are waiting on this replica (CLMAE_CLASSIFIER_FIT_QUEUE); retry later`,
        { headers: { 'retry-after': String(this.options.retryAfterSeconds ?? 1) } })
    }
    const job: FitJob = { id: this.nextId++, method, rows: x.rows, cols: x.cols, data: x.data.slice(), names: [...names], options }
    return await new Promise<ProbeFit>((resolve, reject) => {
      const entry: Queued = { job, resolve, reject, signal: run.signal }
      if (run.signal !== undefined) {
        entry.onAbort = () => { this.cancel(entry) }
        run.signal.addEventListener('abort', entry.onAbort, { once: true })
      }
      this.waiting.push(entry)
      this.pump()
    })
  }

  /** Stops the worker; fits still waiting or running fail. */
  async close (): Promise<void> {
    this.closed = true
    const error = new Error('the fit worker was stopped')
    for (const entry of this.waiting.splice(0)) this.settle(entry, error)
    if (this.running !== undefined) this.finishRunning(error)
    const worker = this.worker
    this.worker = undefined
    await worker?.terminate()
  }

  private pump (): void {
    if (this.running !== undefined || this.closed) return
    const entry = this.waiting.shift()
    if (entry === undefined) return
    const worker = this.worker ?? this.start()
    this.running = { entry }
    if (this.workerReady) this.startDeadline()
    worker.ref() // keep the process alive while a fit is owed
    worker.postMessage(entry.job, [entry.job.data.buffer as ArrayBuffer])
  }

  /** The running fit's deadline, from the moment its worker can run it (starting a worker does not count). */
  private startDeadline (): void {
    const running = this.running
    if (running === undefined || running.timer !== undefined || this.options.timeoutMs === undefined) return
    running.timer = setTimeout(() => {
      this.stopRunning(new ApiError('CLASSIFIER_FIT_TIMEOUT', `the fit ran longer than ${this.options.timeoutMs} ms (CLMAE_CLASSIFIER_FIT_TIMEOUT_MS); fewer examples or classes fit faster`))
    }, this.options.timeoutMs)
  }

  private cancel (entry: Queued): void {
    const at = this.waiting.indexOf(entry)
    if (at !== -1) {
      this.waiting.splice(at, 1)
      this.settle(entry, aborted())
    } else if (this.running?.entry === entry) {
      this.stopRunning(aborted())
    }
  }

  /** Ends the running fit by terminating its worker (a synchronous fit cannot be interrupted otherwise). */
  private stopRunning (error: Error): void {
    const worker = this.worker
    this.worker = undefined
    this.finishRunning(error)
    void worker?.terminate()
    this.pump()
  }

  private finishRunning (result: Error | ProbeFit): void {
    const running = this.running
    if (running === undefined) return
    this.running = undefined
    if (running.timer !== undefined) clearTimeout(running.timer)
    this.settle(running.entry, result)
  }

  private settle (entry: Queued, result: Error | ProbeFit): void {
    if (entry.onAbort !== undefined) entry.signal?.removeEventListener('abort', entry.onAbort)
    if (result instanceof Error) entry.reject(result)
    else entry.resolve(result)
  }

  private start (): Worker {
    const worker = new Worker(workerEntry(import.meta.url, 'fit-worker'))
    this.workerReady = false
    worker.on('message', (reply: FitReply) => {
      if (this.worker !== worker) return
      if ('ready' in reply) {
        this.workerReady = true
        this.startDeadline()
        return
      }
      if (this.running?.entry.job.id !== reply.id) return
      if (this.waiting.length === 0) worker.unref()
      this.finishRunning(reply.ok ? reply.fit : reply.code !== undefined ? new ApiError(reply.code, reply.message) : new Error(`fit failed in the worker: ${reply.message}`))
      this.pump()
    })
    const lost = (error: Error): void => {
      if (this.worker !== worker) return // terminated on purpose (timeout, cancel, close)
      this.worker = undefined
      this.finishRunning(error)
      this.pump()
    }
    worker.on('error', lost)
    worker.on('exit', (code) => { lost(new Error(`the fit worker exited with code ${code}`)) })
    worker.unref() // an idle worker must not keep the process alive
    this.worker = worker
    return worker
  }
}

function aborted (): ApiError {
  return new ApiError('REQUEST_ABORTED', 'the client went away before the fit finished; nothing was stored')
}

/**
 * Runs few-shot fits (fitProbe) on one long-lived worker thread, one fit at a time in arrival order,
 * so that a large fit never blocks the event loop that serves every other request. One worker is
 * enough: a fit is single-threaded, and onnxruntime wants the remaining cores for inference.
 *
 * The worker starts on the first fit (about 0.3 s under tsx) and is restarted after a crash; an
 * ApiError thrown inside the fit (e.g. CLASSIFIER_TOO_FEW_CLASSES) comes back as the same ApiError.
 */
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { ApiError, type ErrorCode } from '../errors.js'
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

interface Pending { resolve: (fit: ProbeFit) => void, reject: (error: Error) => void }

export class FitRunner {
  private worker: Worker | undefined
  private nextId = 1
  private readonly pending = new Map<number, Pending>()

  /** Fits `method` on x (N, D) with one label per row; the matrix is copied to the worker. */
  async fit (method: ProbeMethod, x: Matrix, names: readonly string[], options: FitOptions = {}): Promise<ProbeFit> {
    const worker = this.worker ?? this.start()
    const id = this.nextId++
    const job: FitJob = { id, method, rows: x.rows, cols: x.cols, data: x.data.slice(), names: [...names], options }
    worker.ref() // keep the process alive while a fit is owed
    return await new Promise<ProbeFit>((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      worker.postMessage(job, [job.data.buffer as ArrayBuffer])
    })
  }

  /** Stops the worker; fits still pending fail. */
  async close (): Promise<void> {
    const worker = this.worker
    this.worker = undefined
    this.failAll(new Error('the fit worker was stopped'))
    await worker?.terminate()
  }

  private start (): Worker {
    const worker = new Worker(workerEntry())
    worker.on('message', (reply: FitReply) => {
      const waiting = this.pending.get(reply.id)
      if (waiting === undefined) return
      this.pending.delete(reply.id)
      if (this.pending.size === 0) worker.unref()
      if (reply.ok) waiting.resolve(reply.fit)
      else waiting.reject(reply.code !== undefined ? new ApiError(reply.code, reply.message) : new Error(`fit failed in the worker: ${reply.message}`))
    })
    const lost = (error: Error): void => {
      if (this.worker === worker) this.worker = undefined
      this.failAll(error)
    }
    worker.on('error', lost)
    worker.on('exit', (code) => { lost(new Error(`the fit worker exited with code ${code}`)) })
    worker.unref() // an idle worker must not keep the process alive
    this.worker = worker
    return worker
  }

  private failAll (error: Error): void {
    for (const waiting of this.pending.values()) waiting.reject(error)
    this.pending.clear()
  }
}

/**
 * The worker's entry module. Compiled (dist/*.js) it is a plain file URL; run from source under tsx,
 * a worker does not inherit tsx's loader on Node 20, so a one-line bootstrap registers it first.
 */
function workerEntry (): URL {
  const self = fileURLToPath(import.meta.url)
  const entry = new URL(`./fit-worker${extname(self)}`, import.meta.url)
  if (extname(self) !== '.ts') return entry
  const tsx = import.meta.resolve('tsx/esm/api')
  const boot = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry.href)})`
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`)
}

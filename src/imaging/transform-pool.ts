/**
 * A pool of worker threads for the exact transform (sharp decode + the TypeScript port of Pillow's
 * resampler, transform-worker.ts), so the event loop stays free while large images are resampled
 * (0.6 s of one core for 40 MP). Jobs go FIFO to the first idle worker; only the encoded bytes go in
 * and the crop window comes back. Hand-written rather than piscina:
 * under tsx a worker needs the bootstrap of src/worker-entry.ts, which piscina's own worker wrapper
 * cannot take, and the pool needs nothing beyond dispatch, transfer and restart after a crash.
 * The queue needs no bound of its own: every job holds a slot of the decode admission
 * (decode-admission.ts), which bounds the images in flight.
 */
import { Worker } from 'node:worker_threads'
import { workerEntry } from '../worker-entry.js'
import { ApiError } from '../errors.js'
import type { ResampleFilter } from './resample.js'
import type { TransformJob, TransformReply } from './transform-worker.js'

interface Pending { job: TransformJob, resolve: (out: { data: Uint8Array, width: number, height: number }) => void, reject: (error: Error) => void }

export class TransformPool {
  private readonly idle: Worker[] = []
  private readonly busy = new Map<Worker, Pending>()
  private readonly queue: Pending[] = []
  private started = 0
  private nextId = 1
  private closed = false
  /** close() waiting for the running jobs */
  private onIdle?: () => void

  constructor (readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`transform pool size must be a positive integer, got ${size}. This is a bug.`)
  }

  /** Decodes `bytes` and resamples to outWidth x outHeight, returning the window (RGB, row-major). */
  async transform (bytes: Uint8Array, maxImagePixels: number, outWidth: number, outHeight: number, filter: ResampleFilter,
    window: TransformJob['window']): Promise<{ data: Uint8Array, width: number, height: number }> {
    if (this.closed) throw new Error('transform pool is closed. This is a bug.')
    // a copy of the encoded bytes (at most CLMAE_MAX_IMAGE_BYTES) is transferred: the request keeps its own
    const copy = Uint8Array.from(bytes)
    const job: TransformJob = { id: this.nextId++, bytes: copy, maxImagePixels, outWidth, outHeight, filter, window }
    return await new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject })
      this.dispatch()
    })
  }

  /** jobs queued or running */
  get load (): number {
    return this.queue.length + this.busy.size
  }

  /**
   * Refuses the queued jobs, lets the running ones finish (their callers, and the decode admission's
   * bytes, are waiting on them), then ends the workers.
   */
  async close (): Promise<void> {
    this.closed = true
    for (const p of this.queue.splice(0)) p.reject(new Error('transform pool closed'))
    if (this.busy.size > 0) await new Promise<void>((resolve) => { this.onIdle = resolve })
    await Promise.all(this.idle.splice(0).map(async (w) => await w.terminate()))
  }

  private dispatch (): void {
    while (this.queue.length > 0) {
      const worker = this.idle.pop() ?? (this.started < this.size ? this.spawn() : undefined)
      if (worker === undefined) return
      const pending = this.queue.shift() as Pending
      this.busy.set(worker, pending)
      worker.ref() // a job in flight keeps the process alive; an idle worker does not
      worker.postMessage(pending.job, [pending.job.bytes.buffer as ArrayBuffer])
    }
  }

  private spawn (): Worker {
    this.started++
    const worker = new Worker(workerEntry(import.meta.url, 'transform-worker'))
    worker.on('message', (reply: TransformReply) => {
      const pending = this.busy.get(worker)
      this.busy.delete(worker)
      this.idle.push(worker)
      worker.unref()
      if (pending !== undefined) {
        if (reply.ok) pending.resolve({ data: reply.data, width: reply.width, height: reply.height })
        else pending.reject(reply.code !== undefined ? new ApiError(reply.code, reply.message) : new Error(`transform worker: ${reply.message}`))
      }
      this.dispatch()
      this.settledOne()
    })
    worker.on('error', (error) => this.lost(worker, error))
    worker.on('exit', (code) => this.lost(worker, new Error(`transform worker exited with code ${code}`)))
    return worker
  }

  /** A worker died: fail its job, forget it, let dispatch start a new one. */
  private lost (worker: Worker, error: Error): void {
    const pending = this.busy.get(worker)
    this.busy.delete(worker)
    const i = this.idle.indexOf(worker)
    if (i !== -1) this.idle.splice(i, 1)
    if (pending === undefined && i === -1) return // already handled (error then exit)
    this.started--
    pending?.reject(error)
    if (!this.closed) this.dispatch()
    this.settledOne()
  }

  private settledOne (): void {
    if (this.busy.size === 0) this.onIdle?.()
  }
}

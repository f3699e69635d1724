/**
 * Admission of image decodes: at most `maxConcurrent` decodes run at once (each holds full-size pixels
 * while it decodes and resamples), and the decoded bytes of the images admitted (running or waiting
 * for a slot) never exceed `budgetBytes`. An image that would exceed the budget is refused at once
 * with 503 DECODE_BUDGET_EXCEEDED and Retry-After, rather than queued: memory, not time, is what a flood
 * of 40-megapixel PNGs exhausts, and a refusal costs the client one retry, not the process.
 *
 * The bytes counted per image are what its decode takes at its peak (decode.ts decodeCostBytes: the
 * RGB output plus any frame the decoder holds whole; full size, even where the fast path shrinks a JPEG
 * on load). An image that needs more than the whole budget could never be admitted: it is refused with
 * 413 IMAGE_TOO_MANY_PIXELS, not a 503 that no retry can cure. Waiting for a slot is FIFO and ends early
 * when the request's signal aborts (client gone), releasing the bytes.
 */
import { ApiError } from '../errors.js'

export interface AdmissionOptions {
  maxConcurrent: number
  budgetBytes: number
  retryAfterSeconds: number
  /** reports the bytes admitted and the decodes waiting after every change (metrics) */
  onChange?: (state: { admittedBytes: number, running: number, waiting: number }) => void
}

interface Waiter { start: () => void, cancel: () => void }

export class DecodeAdmission {
  private admittedBytes = 0
  private running = 0
  private readonly waiting: Waiter[] = []

  constructor (private readonly options: AdmissionOptions) {}

  /**
   * Runs `task` once admitted; refuses at once when the bytes do not fit the budget. A wait for a slot
   * ends with the client (`signal`) or at the request's `deadline` (Date.now() ms): 504 DEADLINE_EXCEEDED
   * before any decoding, rather than a decode whose answer the batcher would refuse anyway.
   */
  async run<T> (bytes: number, task: () => Promise<T>, signal?: AbortSignal, deadline?: number): Promise<T> {
    if (bytes > this.options.budgetBytes) {
      throw new ApiError('IMAGE_TOO_MANY_PIXELS',
        `decoding this image needs ${bytes} bytes (its pixels, depth, format and orientation), more than the whole decode budget of ${this.options.budgetBytes} bytes (CLMAE_DECODE_BUDGET_BYTES)`)
    }
    if (this.admittedBytes + bytes > this.options.budgetBytes) {
      throw new ApiError('DECODE_BUDGET_EXCEEDED',
        `decoding this image needs ${bytes} bytes; ${this.admittedBytes} of the ${this.options.budgetBytes} bytes of CLMAE_DECODE_BUDGET_BYTES are in use`,
        { headers: { 'retry-after': String(this.options.retryAfterSeconds) } })
    }
    this.admittedBytes += bytes
    try {
      await this.slot(signal, deadline)
    } catch (error) {
      this.admittedBytes -= bytes
      this.changed()
      throw error
    }
    try {
      return await task()
    } finally {
      this.admittedBytes -= bytes
      this.running--
      this.waiting.shift()?.start()
      this.changed()
    }
  }

  get limits (): { maxConcurrent: number, budgetBytes: number } {
    return { maxConcurrent: this.options.maxConcurrent, budgetBytes: this.options.budgetBytes }
  }

  get state (): { admittedBytes: number, running: number, waiting: number } {
    return { admittedBytes: this.admittedBytes, running: this.running, waiting: this.waiting.length }
  }

  private async slot (signal?: AbortSignal, deadline?: number): Promise<void> {
    if (this.running < this.options.maxConcurrent && this.waiting.length === 0) {
      this.running++
      this.changed()
      return
    }
    if (signal?.aborted === true) throw new ApiError('REQUEST_ABORTED', 'the client went away before its image was decoded')
    if (deadline !== undefined && deadline <= Date.now()) throw new ApiError('DEADLINE_EXCEEDED', 'the request deadline passed before its image could be decoded')
    await new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const waiter: Waiter = {
        start: () => { signal?.removeEventListener('abort', onAbort); clearTimeout(timer); this.running++; resolve() },
        cancel: () => reject(new ApiError('REQUEST_ABORTED', 'the client went away while its image waited to be decoded'))
      }
      const leave = (): void => {
        signal?.removeEventListener('abort', onAbort)
        clearTimeout(timer)
        const i = this.waiting.indexOf(waiter)
        if (i !== -1) this.waiting.splice(i, 1)
      }
      const onAbort = (): void => { leave(); waiter.cancel() }
      signal?.addEventListener('abort', onAbort, { once: true })
      if (deadline !== undefined) {
        timer = setTimeout(() => { leave(); reject(new ApiError('DEADLINE_EXCEEDED', 'the request deadline passed while its image waited to be decoded')) }, deadline - Date.now())
      }
      this.waiting.push(waiter)
      this.changed()
    })
  }

  private changed (): void {
    this.options.onChange?.(this.state)
  }
}

/**
 * The turns of one request's images at the admission. Without them every image of a request was
 * admitted in the same tick, so a request whose images together exceed the budget (15 photos of 12 MP
 * at the default 512 MiB) was refused with a 503 on an idle server, and every retry too. With them a
 * request competes with other requests, never with itself: its images enter in order, at most
 * maxConcurrent at once and, while some are in flight, only as many as fit the budget beside them.
 * Once one is refused (503) or the client is gone, the images not yet started are not decoded (the
 * request fails anyway): they are refused with the same code, without their work.
 */
export class AdmissionTurns {
  private running = 0
  private heldBytes = 0
  private refusal?: ApiError
  private readonly waiting: Array<{ bytes: number, start: () => void, refuse: (error: ApiError) => void }> = []

  constructor (private readonly limits: { maxConcurrent: number, budgetBytes: number }, private readonly signal?: AbortSignal) {}

  /** Runs `task` (which goes through the admission) when this request's turn comes. */
  async run<T> (bytes: number, task: () => Promise<T>): Promise<T> {
    await this.turn(bytes)
    try {
      return await task()
    } catch (error) {
      if (error instanceof ApiError && (error.status === 503 || error.code === 'REQUEST_ABORTED' || error.code === 'DEADLINE_EXCEEDED')) this.refusal ??= error
      throw error
    } finally {
      this.running--
      this.heldBytes -= bytes
      this.next()
    }
  }

  private async turn (bytes: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.waiting.push({ bytes, start: resolve, refuse: reject })
      this.next()
    })
  }

  private next (): void {
    if (this.refusal === undefined && this.signal?.aborted === true) this.refusal = new ApiError('REQUEST_ABORTED', 'the client went away before its images were decoded')
    while (this.waiting.length > 0) {
      const first = this.waiting[0]
      if (this.refusal !== undefined) {
        this.waiting.shift()
        first.refuse(new ApiError(this.refusal.code, `not decoded: another image of this request was refused (${this.refusal.message})`, { headers: this.refusal.headers }))
        continue
      }
      const fits = this.running < this.limits.maxConcurrent && this.heldBytes + first.bytes <= this.limits.budgetBytes
      if (this.running > 0 && !fits) return
      this.waiting.shift()
      this.running++
      this.heldBytes += first.bytes
      first.start()
    }
  }
}

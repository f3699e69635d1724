/**
 * The process's inference thread, seen from the main thread: one worker thread (session-worker.ts)
 * shared by every session of every loaded model, so a batch never runs on the event loop (see
 * onnx-backend.ts for why). Each backend holds a reference; the last one released ends the thread.
 * One thread rather than one per session: the runs were serial on the main thread too, and more
 * threads would each bring their own onnxruntime intra-op pool onto the same cores.
 * Inputs are copied to the thread (the caller may still hold them); outputs come back transferred.
 */
import { Worker } from 'node:worker_threads'
import { workerEntry } from '../worker-entry.js'
import type { SessionSpec } from './onnx-backend.js'
import type { CreatedSession, SessionReply, SessionRequest } from './session-worker.js'
import type { Tensor } from './tensor.js'

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

export class InferenceThread {
  private readonly worker: Worker
  private readonly pending = new Map<number, { resolve: (reply: SessionReply & { ok: true }) => void, reject: (error: Error) => void }>()
  private nextId = 1
  private references = 0
  private failure?: Error

  constructor (private readonly onEnd: () => void) {
    this.worker = new Worker(workerEntry(import.meta.url, 'session-worker'))
    this.worker.unref() // an idle thread does not keep the process alive; a call in flight does
    this.worker.on('message', (reply: SessionReply) => {
      const waiting = this.pending.get(reply.id)
      if (waiting === undefined) return
      this.pending.delete(reply.id)
      if (this.pending.size === 0) this.worker.unref()
      if (reply.ok) waiting.resolve(reply)
      else waiting.reject(new Error(reply.message))
    })
    this.worker.on('error', (error) => this.fail(new Error(`inference thread failed: ${error.message}`, { cause: error })))
    this.worker.on('exit', (code) => this.fail(new Error(`inference thread exited (code ${code})`)))
  }

  addReference (): void { this.references++ }

  /** Drops one backend's reference; the last one terminates the thread. */
  releaseReference (): void {
    if (--this.references > 0) return
    this.onEnd()
    void this.worker.terminate()
  }

  async createSession (path: string, spec: SessionSpec): Promise<CreatedSession> {
    return (await this.call({ op: 'create', path, spec })).created as CreatedSession
  }

  async run (sessionId: number, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    return (await this.call({ op: 'run', sessionId, feeds })).outputs as Record<string, Tensor>
  }

  async release (sessionId: number): Promise<void> {
    if (this.failure === undefined) await this.call({ op: 'release', sessionId })
  }

  private async call (request: DistributiveOmit<SessionRequest, 'id'>): Promise<SessionReply & { ok: true }> {
    if (this.failure !== undefined) throw this.failure
    const id = this.nextId++
    return await new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.worker.ref()
      this.worker.postMessage({ ...request, id })
    })
  }

  private fail (error: Error): void {
    this.failure ??= error
    this.onEnd()
    for (const waiting of this.pending.values()) waiting.reject(error)
    this.pending.clear()
  }
}

let shared: InferenceThread | undefined

/** The process's inference thread (started on first use), with one more reference held by the caller. */
export function acquireInferenceThread (): InferenceThread {
  const thread = shared ?? new InferenceThread(() => { if (shared === thread) shared = undefined })
  shared = thread
  thread.addReference()
  return thread
}

/**
 * The process's inference thread, seen from the main thread: one worker thread (session-worker.ts)
 * shared by every session of every loaded model, so a batch never runs on the event loop (see
 * onnx-backend.ts for why). Each backend holds a reference; the last one released ends the thread.
 * One thread rather than one per session: the runs were serial on the main thread too, and more
 * threads would each bring their own onnxruntime intra-op pool onto the same cores.
 * Inputs are copied to the thread (the caller may still hold them); outputs come back transferred.
 * A thread that dies is started again on the next call, and each session is re-created from its graph
 * before its next run: the calls in flight at the crash fail, the process keeps serving.
 */
import { Worker } from 'node:worker_threads'
import { workerEntry } from '../worker-entry.js'
import type { SessionSpec } from './onnx-backend.js'
import type { CreatedSession, SessionReply, SessionRequest } from './session-worker.js'
import type { Tensor } from './tensor.js'

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

/** A session as the backends know it: its graph and options, and its id on the current worker. */
interface KnownSession { path: string, spec: SessionSpec, generation: number, remote: Promise<number>, remoteNow?: number }

export class InferenceThread {
  private worker: Worker | undefined
  /** counts the workers started: a session made on an earlier one is re-created before its next run */
  private generation = 0
  private readonly pending = new Map<number, { resolve: (reply: SessionReply & { ok: true }) => void, reject: (error: Error) => void }>()
  private readonly sessions = new Map<number, KnownSession>()
  private nextId = 1
  private nextSessionId = 1
  private references = 0
  private ended = false
  private stopping = false
  private readonly settledWaiters: Array<() => void> = []

  constructor (private readonly onEnd: () => void) {}

  addReference (): void { this.references++ }

  /**
   * Drops one backend's reference; the last one ends the thread once its calls in flight have answered
   * (terminating a worker inside onnxruntime's native run aborts the whole process).
   */
  releaseReference (): void {
    if (--this.references > 0) return
    this.ended = true
    this.onEnd()
    if (this.pending.size === 0) this.terminate()
  }

  private terminate (): void {
    const worker = this.worker
    this.worker = undefined
    void worker?.terminate()
  }

  async createSession (path: string, spec: SessionSpec): Promise<CreatedSession> {
    const created = (await this.call({ op: 'create', path, spec })).created as CreatedSession
    const sessionId = this.nextSessionId++
    // the worker that answered is the current one (read after the call: the call may have started it)
    this.sessions.set(sessionId, { path, spec, generation: this.generation, remote: Promise.resolve(created.sessionId), remoteNow: created.sessionId })
    return { ...created, sessionId }
  }

  async run (sessionId: number, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    // posted before the first await when the session is ready, so that calls reach the worker in the order made
    const remote = this.current(sessionId) ?? await this.remoteId(sessionId)
    return (await this.call({ op: 'run', sessionId: remote, feeds })).outputs as Record<string, Tensor>
  }

  async release (sessionId: number): Promise<void> {
    const session = this.sessions.get(sessionId)
    this.sessions.delete(sessionId)
    if (session === undefined || session.generation !== this.generation || this.worker === undefined) return // gone with its worker
    await this.call({ op: 'release', sessionId: session.remoteNow ?? await session.remote })
  }

  /** The session's id on the running worker, when it has one already. */
  private current (sessionId: number): number | undefined {
    const session = this.sessions.get(sessionId)
    if (session === undefined || session.generation !== this.generation || this.worker === undefined) return undefined
    return session.remoteNow
  }

  /**
   * The session's id on the current worker. After a crash (the worker gone, e.g. out of memory) the
   * thread restarts on the next call and each session is created again from its graph, once.
   */
  private async remoteId (sessionId: number): Promise<number> {
    const session = this.sessions.get(sessionId)
    if (session === undefined) throw new Error(`inference thread has no session ${sessionId}. This is a bug.`)
    if (this.worker === undefined && !this.ended) this.start()
    if (session.generation !== this.generation) {
      session.generation = this.generation
      session.remoteNow = undefined
      session.remote = this.call({ op: 'create', path: session.path, spec: session.spec }).then((reply) => {
        session.remoteNow = (reply.created as CreatedSession).sessionId
        return session.remoteNow
      })
      session.remote.catch(() => { session.generation = -1 }) // try again on the next run
    }
    return await session.remote
  }

  private start (): Worker {
    const worker = new Worker(workerEntry(import.meta.url, 'session-worker'))
    this.worker = worker
    this.generation++
    worker.unref() // an idle thread does not keep the process alive; a call in flight does
    worker.on('message', (reply: SessionReply) => {
      const waiting = this.pending.get(reply.id)
      if (waiting === undefined) return
      this.pending.delete(reply.id)
      if (this.pending.size === 0) worker.unref()
      if (reply.ok) waiting.resolve(reply)
      else waiting.reject(new Error(reply.message))
      if (this.pending.size === 0 && this.ended) this.terminate()
      if (this.pending.size === 0) for (const settled of this.settledWaiters.splice(0)) settled()
    })
    worker.on('error', (error) => this.lost(worker, new Error(`inference thread failed: ${error.message}`, { cause: error })))
    worker.on('exit', (code) => this.lost(worker, new Error(`inference thread exited (code ${code})`)))
    return worker
  }

  /** The worker died (or was terminated): its calls fail; the next call starts a new one (not at once: no crash loop). */
  private lost (worker: Worker, error: Error): void {
    if (worker !== this.worker) return // an earlier worker's second event, or the terminated one
    this.worker = undefined
    for (const waiting of this.pending.values()) waiting.reject(error)
    this.pending.clear()
    for (const settled of this.settledWaiters.splice(0)) settled()
  }

  /**
   * For an exit that cannot wait for queued work: refuses new calls and resolves once the calls already
   * posted have answered. A native run cannot be interrupted, and terminating the thread inside one
   * (which process.exit does) aborts the process with SIGABRT.
   */
  async quiesce (): Promise<void> {
    this.stopping = true
    if (this.pending.size === 0) return
    await new Promise<void>((resolve) => this.settledWaiters.push(resolve))
  }

  private async call (request: DistributiveOmit<SessionRequest, 'id'>): Promise<SessionReply & { ok: true }> {
    if (this.ended) throw new Error('the inference thread has ended (every backend closed). This is a bug.')
    if (this.stopping) throw new Error('the service is exiting: no new inference runs')
    const worker = this.worker ?? this.start()
    const id = this.nextId++
    return await new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      worker.ref()
      worker.postMessage({ ...request, id })
    })
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

/** Waits, before process.exit, until the inference thread is outside any native run (see quiesce). */
export async function quiesceInferenceThread (): Promise<void> {
  await shared?.quiesce()
}

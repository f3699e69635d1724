/**
 * The inference thread (session-thread.ts): holds the onnxruntime sessions of every loaded graph and
 * runs their batches here, off the event loop. Runs are serial on this thread, as they were on the
 * main thread before; each uses onnxruntime's own intra-op threads.
 */
import { parentPort } from 'node:worker_threads'
import type * as ort from 'onnxruntime-node'
import { openOrtSession, runOrtSession, type SessionSpec } from './onnx-backend.js'
import type { GraphCacheReport } from './ort-graph-cache.js'
import type { Tensor } from './tensor.js'

export type SessionRequest =
  | { id: number, op: 'create', path: string, spec: SessionSpec }
  | { id: number, op: 'run', sessionId: number, feeds: Record<string, Tensor> }
  | { id: number, op: 'release', sessionId: number }

export interface CreatedSession { sessionId: number, executionProvider: string, inputNames: string[], outputNames: string[], fallbackReason?: string, graphCache?: GraphCacheReport }

export type SessionReply =
  | { id: number, ok: true, created?: CreatedSession, outputs?: Record<string, Tensor> }
  | { id: number, ok: false, message: string }

const sessions = new Map<number, ort.InferenceSession>()
let nextSessionId = 1

async function handle (request: SessionRequest): Promise<{ reply: SessionReply, transfer: ArrayBuffer[] }> {
  if (request.op === 'create') {
    const opened = await openOrtSession(request.path, request.spec)
    const sessionId = nextSessionId++
    sessions.set(sessionId, opened.session)
    const created = { sessionId, executionProvider: opened.executionProvider, inputNames: [...opened.session.inputNames], outputNames: [...opened.session.outputNames], fallbackReason: opened.fallbackReason, graphCache: opened.graphCache }
    return { reply: { id: request.id, ok: true, created }, transfer: [] }
  }
  const session = sessions.get(request.sessionId)
  if (session === undefined) throw new Error(`inference thread has no session ${request.sessionId}. This is a bug.`)
  if (request.op === 'release') {
    sessions.delete(request.sessionId)
    await session.release()
    return { reply: { id: request.id, ok: true }, transfer: [] }
  }
  const outputs = await runOrtSession(session, request.feeds)
  // the outputs are handed over, not copied: this thread never reads them again
  const transfer = [...new Set(Object.values(outputs).map((t) => t.data.buffer as ArrayBuffer))]
  return { reply: { id: request.id, ok: true, outputs }, transfer }
}

// one request at a time, in arrival order: a session's release waits for its runs already sent (onnxruntime-node's
// run yields once before it starts, so without the chain a release could overtake a run of the same session)
let previous: Promise<void> = Promise.resolve()
parentPort?.on('message', (request: SessionRequest) => {
  previous = previous.then(async () => await handle(request).then(
    ({ reply, transfer }) => parentPort?.postMessage(reply, transfer),
    (error: unknown) => parentPort?.postMessage({ id: request.id, ok: false, message: error instanceof Error ? error.message : String(error) } satisfies SessionReply)
  ))
})

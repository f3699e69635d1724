/**
 * Worker-thread entry of FitRunner (fit-runner.ts): runs fitProbe() off the service's event loop.
 * A logreg fit with cross-validation over thousands of examples takes seconds to minutes of pure
 * TypeScript; on the main thread it would stall every request, /livez included.
 */
import { parentPort } from 'node:worker_threads'
import { ApiError } from '../errors.js'
import { fitProbe } from './classifiers.js'
import type { FitJob, FitReply } from './fit-runner.js'

if (parentPort === null) throw new Error('fit-worker.ts runs as a worker thread (see fit-runner.ts)')
const port = parentPort

port.on('message', (job: FitJob) => {
  let reply: FitReply
  try {
    const x = { rows: job.rows, cols: job.cols, data: job.data }
    reply = { id: job.id, ok: true, fit: fitProbe(job.method, x, job.names, job.options) }
  } catch (error) {
    reply = error instanceof ApiError
      ? { id: job.id, ok: false, code: error.code, message: error.message }
      : { id: job.id, ok: false, message: error instanceof Error ? (error.stack ?? error.message) : String(error) }
  }
  port.postMessage(reply)
})

// loaded: the runner starts a fit's deadline from here, so starting the worker never counts against it
port.postMessage({ ready: true })

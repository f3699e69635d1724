/**
 * The onnxruntime sessions on the inference thread (src/inference/session-thread.ts): the same outputs
 * as a session on the main thread, concurrent runs of two sessions each get their own answer, the event
 * loop stays free while batches run, a released session is gone, and a thread that dies is restarted
 * with its sessions re-created, and closing the last session with a run in flight lets that run answer.
 * The event-loop check uses eventLoopUtilization (the share of time the loop spent running code rather
 * than waiting): unlike a timer's gap it does not move when a busy machine deschedules the process.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { Worker } from 'node:worker_threads'
import { createOnnxBackend } from '../../src/inference/onnx-backend.js'
import { acquireInferenceThread } from '../../src/inference/session-thread.js'
import type { InferenceBackend } from '../../src/inference/backend.js'
import { float32Tensor, int64Tensor, type Tensor } from '../../src/inference/tensor.js'
import { BASELINE_MODEL, DEFAULT_MODEL, MODELS_DIR } from '../helpers/server.js'

const S = 64
const L = 64

function encoderFeeds (n: number, seed: number): Record<string, Tensor> {
  const images = new Float32Array(n * 3 * S * S)
  for (let i = 0; i < images.length; i++) images[i] = Math.sin(i * 0.37 + seed) * 2
  const ids = Array.from({ length: n * L }, (_, i) => i % L)
  return { images: float32Tensor(images, [n, 3, S, S]), ids_keep: int64Tensor(ids, [n, L]) }
}

const options = { executionProvider: 'cpu' as const, intraOpThreads: 1, allowSpinning: false }
const encoder = (model: string) => join(MODELS_DIR, model, 'encoder.onnx')

test('sessions on the inference thread answer as on the main thread; concurrent runs of two sessions do not mix', async () => {
  const onMain = [await createOnnxBackend(encoder(DEFAULT_MODEL), { ...options, thread: 'main' }), await createOnnxBackend(encoder(BASELINE_MODEL), { ...options, thread: 'main' })]
  const onThread = [await createOnnxBackend(encoder(DEFAULT_MODEL), options), await createOnnxBackend(encoder(BASELINE_MODEL), options)]
  try {
    assert.deepEqual(onThread[0].outputNames, onMain[0].outputNames)
    const jobs = [0, 1, 2, 3, 4, 5].map((k) => ({ backend: k % 2, feeds: encoderFeeds(1 + (k % 3), k) }))
    const threaded = await Promise.all(jobs.map(async (job) => await onThread[job.backend].run(job.feeds)))
    for (const [k, job] of jobs.entries()) {
      const expected = await onMain[job.backend].run(job.feeds)
      for (const name of onMain[0].outputNames) {
        assert.deepEqual(threaded[k][name].dims, expected[name].dims, `job ${k} ${name} dims`)
        assert.deepEqual(threaded[k][name].data, expected[name].data, `job ${k} ${name}: bit-identical to the main-thread session`)
      }
    }
    // the caller's inputs are copied, not transferred: still readable after the run
    const feeds = encoderFeeds(2, 9)
    await onThread[0].run(feeds)
    assert.equal(feeds.images.data.length, 2 * 3 * S * S)
  } finally {
    await Promise.all([...onMain, ...onThread].map(async (b) => await b.close()))
  }
})

async function loopUtilisationWhileRunning (backend: InferenceBackend): Promise<number> {
  const feeds = encoderFeeds(16, 1)
  await backend.run(feeds) // warm-up for this shape
  const start = performance.eventLoopUtilization()
  for (let i = 0; i < 4; i++) await backend.run(feeds)
  return performance.eventLoopUtilization(start).utilization
}

test('the event loop stays free while batches run on the inference thread (and not on the main thread)', async () => {
  const threaded = await createOnnxBackend(encoder(DEFAULT_MODEL), options)
  const main = await createOnnxBackend(encoder(DEFAULT_MODEL), { ...options, thread: 'main' })
  try {
    const free = await loopUtilisationWhileRunning(threaded)
    const blocked = await loopUtilisationWhileRunning(main)
    assert.ok(blocked > 0.8, `on the main thread the loop is busy for the runs (utilisation ${blocked.toFixed(3)}): the measure can see a blocked loop`)
    assert.ok(free < 0.3, `on the inference thread the loop is mostly idle during the runs (utilisation ${free.toFixed(3)})`)
  } finally {
    await threaded.close()
    await main.close()
  }
})

test('a closed session is released: its runs reject, the other session keeps running', async () => {
  const a = await createOnnxBackend(encoder(DEFAULT_MODEL), options)
  const b = await createOnnxBackend(encoder(BASELINE_MODEL), options)
  await a.close()
  await assert.rejects(a.run(encoderFeeds(1, 0)), /no session/)
  const out = await b.run(encoderFeeds(1, 0))
  assert.deepEqual(out[b.outputNames[0]].dims.slice(0, 1), [1])
  await b.close()
})

test('a session that cannot be created rejects, and the thread is released', async () => {
  await assert.rejects(createOnnxBackend(join(MODELS_DIR, 'no-such-graph.onnx'), options), /no-such-graph|Load model|file/i)
  // the process can still create and run sessions afterwards
  const b = await createOnnxBackend(encoder(DEFAULT_MODEL), options)
  await b.run(encoderFeeds(1, 0))
  await b.close()
})

test('a crashed inference thread is restarted: its sessions are re-created and answer as before', async () => {
  const a = await createOnnxBackend(encoder(DEFAULT_MODEL), options)
  const b = await createOnnxBackend(encoder(BASELINE_MODEL), options)
  try {
    const feeds = encoderFeeds(2, 3)
    const before = await a.run(feeds)
    // the crash, as the main thread sees one (an uncaught error or an OOM ends the worker the same way);
    // while idle: terminating a worker inside onnxruntime's native run aborts the whole process
    const thread = acquireInferenceThread()
    await (thread as unknown as { worker: Worker }).worker.terminate()
    thread.releaseReference()
    const after = await a.run(feeds)
    assert.deepEqual(after[a.outputNames[0]].data, before[a.outputNames[0]].data, 'the re-created session gives the same outputs')
    const [again, other] = await Promise.all([a.run(feeds), b.run(encoderFeeds(1, 0))])
    assert.deepEqual(again[a.outputNames[0]].data, before[a.outputNames[0]].data)
    assert.deepEqual(other[b.outputNames[0]].dims.slice(0, 1), [1])
  } finally {
    await a.close()
    await b.close()
  }
})

test('closing the last session while its run is in flight: the run still answers, then the thread ends', async () => {
  const a = await createOnnxBackend(encoder(DEFAULT_MODEL), options)
  const feeds = encoderFeeds(32, 5)
  const expected = await a.run(feeds)
  const inFlight = a.run(feeds)
  await a.close() // the thread's last reference: it must not end under the run (nor release the session before it)
  let timer: NodeJS.Timeout | undefined
  const outcome = await Promise.race([
    inFlight.then((out) => out, (e: Error) => e),
    new Promise((resolve) => { timer = setTimeout(() => resolve('unsettled'), 20_000) })
  ])
  clearTimeout(timer)
  assert.ok(!(outcome instanceof Error) && outcome !== 'unsettled', `the run in flight ${outcome instanceof Error ? `failed: ${outcome.message}` : 'never settled'}`)
  assert.deepEqual((outcome as Record<string, Tensor>)[a.outputNames[0]].data, expected[a.outputNames[0]].data)
})

/**
 * The dynamic batcher on a fake backend: batch size and wait, order of outputs, shape grouping,
 * bounded queue (QUEUE_FULL + Retry-After), deadlines, client aborts (queued work dropped), drain.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Batcher, type BatcherOptions } from '../../src/inference/batcher.js'
import { ApiError } from '../../src/errors.js'
import { createMetrics } from '../../src/metrics.js'
import { FakeBackend } from '../helpers/fake-backend.js'

const OPTIONS: BatcherOptions = { maxBatchSize: 4, maxWaitMs: 5, maxQueue: 8, retryAfterSeconds: 3, model: 'fake', graph: 'encoder' }

/** N rows of D values; row n is filled with `start + n`. */
function rows (n: number, start = 0, d = 2) {
  const data = new Float32Array(n * d)
  for (let i = 0; i < n; i++) data.fill(start + i, i * d, (i + 1) * d)
  return { x: { type: 'float32' as const, data, dims: [n, d] } }
}

const tick = () => new Promise((resolve) => setImmediate(resolve))

test('concurrent requests share batches of at most maxBatchSize, outputs in request order', async () => {
  const backend = new FakeBackend()
  const batcher = new Batcher(backend, OPTIONS)
  const results = await Promise.all([batcher.submit(rows(3, 0)), batcher.submit(rows(2, 10)), batcher.submit(rows(1, 20))])
  assert.deepEqual(backend.runs, [4, 2])
  assert.deepEqual(Array.from(results[0].outputs.y.data as Float32Array), [0, 0, 2, 2, 4, 4])
  assert.deepEqual(Array.from(results[1].outputs.y.data as Float32Array), [20, 20, 22, 22])
  assert.deepEqual(Array.from(results[2].outputs.y.data as Float32Array), [40, 40])
  assert.deepEqual(results[0].outputs.y.dims, [3, 2])
})

test('a lone request waits at most about maxWaitMs', async () => {
  const backend = new FakeBackend()
  const batcher = new Batcher(backend, { ...OPTIONS, maxWaitMs: 30 })
  const start = performance.now()
  const result = await batcher.submit(rows(1))
  const elapsed = performance.now() - start
  assert.ok(elapsed >= 25 && elapsed < 500, `waited ${elapsed} ms`)
  assert.ok(result.queueMs >= 25)
  assert.deepEqual(backend.runs, [1])
})

test('rows of different shapes never share a batch', async () => {
  const backend = new FakeBackend()
  const batcher = new Batcher(backend, OPTIONS)
  await Promise.all([batcher.submit(rows(1, 0, 2)), batcher.submit(rows(1, 1, 3)), batcher.submit(rows(1, 2, 2))])
  assert.deepEqual([...backend.runs].sort(), [1, 2])
})

test('a full queue refuses the whole request with QUEUE_FULL and Retry-After, and counts nothing queued', async () => {
  const backend = new FakeBackend(0, true)
  const metrics = createMetrics({ defaultMetrics: false })
  const batcher = new Batcher(backend, { ...OPTIONS, maxQueue: 4, maxBatchSize: 1, maxWaitMs: 0 }, metrics)
  const first = batcher.submit(rows(1, 0)) // runs (held by the gate)
  await tick()
  const queued = batcher.submit(rows(4, 1)) // fills the queue
  await assert.rejects(batcher.submit(rows(1, 9)), (e: unknown) => {
    assert.ok(e instanceof ApiError)
    assert.equal(e.code, 'QUEUE_FULL')
    assert.equal(e.status, 503)
    assert.equal(e.headers['retry-after'], '3')
    return true
  })
  assert.equal(batcher.depth, 4)
  const depth = await metrics.queueDepth.get()
  assert.equal(depth.values[0].value, 4)
  for (let i = 0; i < 5; i++) { while (backend.waiting === 0) await tick(); backend.release() }
  await Promise.all([first, queued])
  assert.deepEqual(backend.runs, [1, 1, 1, 1, 1])
})

test('a request past its deadline fails with DEADLINE_EXCEEDED and its queued rows are dropped', async () => {
  const backend = new FakeBackend(0, true)
  const batcher = new Batcher(backend, { ...OPTIONS, maxBatchSize: 1, maxWaitMs: 0 })
  const first = batcher.submit(rows(1, 0))
  await tick()
  const late = batcher.submit(rows(2, 5), { deadline: Date.now() + 20 })
  await assert.rejects(late, (e: unknown) => e instanceof ApiError && e.code === 'DEADLINE_EXCEEDED')
  assert.equal(batcher.depth, 0)
  backend.release()
  await first
  await batcher.drain()
  assert.deepEqual(backend.rowsSeen, [[0]], 'the expired rows never ran')
})

test('a client abort drops its queued rows; an already aborted signal is refused at once', async () => {
  const backend = new FakeBackend(0, true)
  const batcher = new Batcher(backend, { ...OPTIONS, maxBatchSize: 1, maxWaitMs: 0 })
  const first = batcher.submit(rows(1, 0))
  await tick()
  const controller = new AbortController()
  const gone = batcher.submit(rows(3, 7), { signal: controller.signal })
  const kept = batcher.submit(rows(1, 42))
  controller.abort()
  await assert.rejects(gone, (e: unknown) => e instanceof ApiError && e.code === 'REQUEST_ABORTED')
  assert.equal(batcher.depth, 1)
  backend.release()
  await first
  while (backend.waiting === 0) await tick()
  backend.release()
  await kept
  assert.deepEqual(backend.rowsSeen, [[0], [42]])
  await assert.rejects(batcher.submit(rows(1), { signal: AbortSignal.abort() }), (e: unknown) => e instanceof ApiError && e.code === 'REQUEST_ABORTED')
})

test('a backend failure rejects every request of that batch; the batcher keeps serving', async () => {
  const backend = new FakeBackend()
  const batcher = new Batcher(backend, OPTIONS)
  backend.failNext = new Error('boom')
  const results = await Promise.allSettled([batcher.submit(rows(1)), batcher.submit(rows(1))])
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected'])
  const ok = await batcher.submit(rows(1, 3))
  assert.deepEqual(Array.from(ok.outputs.y.data as Float32Array), [6, 6])
})

test('drain resolves once queued work has run; metrics observe batch sizes and queue wait', async () => {
  const backend = new FakeBackend(10)
  const metrics = createMetrics({ defaultMetrics: false })
  const batcher = new Batcher(backend, OPTIONS, metrics)
  const pending = [batcher.submit(rows(4)), batcher.submit(rows(3))]
  await batcher.drain()
  assert.equal(batcher.depth, 0)
  await Promise.all(pending)
  const text = await metrics.registry.metrics()
  assert.match(text, /clmae_batch_size_count\{model="fake",graph="encoder"\} 2/)
  assert.match(text, /clmae_batch_size_sum\{model="fake",graph="encoder"\} 7/)
  assert.match(text, /clmae_queue_wait_seconds_count\{model="fake",graph="encoder"\} 7/)
  assert.match(text, /clmae_inference_duration_seconds_count\{model="fake",graph="encoder"\} 2/)
})

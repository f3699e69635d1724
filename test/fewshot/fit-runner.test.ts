/**
 * FitRunner: fits on a worker thread give the same classifier as fitProbe() on the main thread, keep
 * their ApiError codes, and leave the event loop free while they run.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fitProbe } from '../../src/fewshot/classifiers.js'
import { FitRunner } from '../../src/fewshot/fit-runner.js'
import { createMatrix, type Matrix } from '../../src/fewshot/matrix.js'
import { ApiError } from '../../src/errors.js'

/** n examples of k classes in d dims: class c lifts every k-th coordinate. */
function clusters (n: number, k: number, d: number): { x: Matrix, names: string[] } {
  const x = createMatrix(n, d)
  const names: string[] = []
  for (let i = 0; i < n; i++) {
    const c = i % k
    names.push(`class-${c}`)
    for (let j = 0; j < d; j++) x.data[i * d + j] = Math.sin(i * 7.1 + j * 1.3) + (j % k === c ? 1 : 0)
  }
  return { x, names }
}

test('a worker fit equals the main-thread fit', async (t) => {
  const runner = new FitRunner()
  t.after(async () => { await runner.close() })
  const { x, names } = clusters(60, 3, 16)
  for (const method of ['logreg', 'knn', 'centroid'] as const) {
    assert.deepEqual(await runner.fit(method, x, names, { seed: 3 }), fitProbe(method, x, names, { seed: 3 }), method)
  }
  assert.equal(x.data.length, 60 * 16, 'the caller keeps its matrix (the worker gets a copy)')
})

test('an ApiError inside the fit comes back with its code', async (t) => {
  const runner = new FitRunner()
  t.after(async () => { await runner.close() })
  const { x } = clusters(4, 1, 8)
  await assert.rejects(runner.fit('logreg', x, ['a', 'a', 'a', 'a']),
    (error: unknown) => error instanceof ApiError && error.code === 'CLASSIFIER_TOO_FEW_CLASSES')
  // The worker survives a refused fit.
  const ok = clusters(20, 2, 8)
  assert.deepEqual((await runner.fit('centroid', ok.x, ok.names)).probe.labels, ['class-0', 'class-1'])
})

test('the event loop keeps turning while a large fit runs', async (t) => {
  const runner = new FitRunner()
  t.after(async () => { await runner.close() })
  const { x, names } = clusters(600, 10, 64)
  let ticks = 0
  const timer = setInterval(() => { ticks++ }, 10)
  const started = performance.now()
  await runner.fit('logreg', x, names)
  clearInterval(timer)
  const seconds = (performance.now() - started) / 1000
  // On the main thread the interval could not fire at all during the fit; here it fires throughout.
  assert.ok(seconds > 0.2, `the fit should take a while to make the test meaningful (took ${seconds.toFixed(2)} s)`)
  assert.ok(ticks >= seconds * 100 * 0.2, `${ticks} timer ticks in ${seconds.toFixed(2)} s`)
})

// ---- bounds: queue, deadline, cancellation

async function codeOf (p: Promise<unknown>): Promise<string> {
  try { await p } catch (error) { return error instanceof ApiError ? error.code : String(error) }
  return 'ok'
}

test('a full fit queue answers 503 CLASSIFIER_FIT_QUEUE_FULL with Retry-After; queued fits still complete', async (t) => {
  const runner = new FitRunner({ maxQueued: 1, retryAfterSeconds: 3 })
  t.after(() => runner.close())
  const big = clusters(400, 4, 96)
  const small = clusters(12, 2, 8)
  const running = runner.fit('logreg', big.x, big.names)
  const queued = runner.fit('centroid', small.x, small.names)
  const refused = runner.fit('centroid', small.x, small.names)
  await assert.rejects(refused, (e: ApiError) => e.code === 'CLASSIFIER_FIT_QUEUE_FULL' && e.status === 503 && e.headers['retry-after'] === '3')
  assert.equal(runner.queued, 1)
  assert.deepEqual((await running).probe.labels.length, 4)
  assert.deepEqual((await queued).probe.labels, ['class-0', 'class-1'])
})

test('a fit past its deadline is stopped with 504 CLASSIFIER_FIT_TIMEOUT and the next fit runs on a fresh worker', async (t) => {
  const runner = new FitRunner({ timeoutMs: 300 }) // counted from the worker's ready message: starting it does not count
  t.after(() => runner.close())
  const big = clusters(800, 8, 192) // several seconds of logreg with cross-validation
  const small = clusters(12, 2, 8)
  const started = Date.now()
  const slow = runner.fit('logreg', big.x, big.names)
  const next = runner.fit('centroid', small.x, small.names)
  assert.equal(await codeOf(slow), 'CLASSIFIER_FIT_TIMEOUT')
  assert.ok(Date.now() - started < 3000, 'stopped near its deadline, not at the end of the fit')
  assert.deepEqual((await next).probe.labels, ['class-0', 'class-1'])
})

test('a fit whose client went away leaves the queue, or is stopped when running', async (t) => {
  const runner = new FitRunner()
  t.after(() => runner.close())
  const big = clusters(800, 8, 192)
  const small = clusters(12, 2, 8)
  const runningClient = new AbortController()
  const queuedClient = new AbortController()
  const started = Date.now()
  const running = runner.fit('logreg', big.x, big.names, {}, { signal: runningClient.signal })
  const queued = runner.fit('logreg', big.x, big.names, {}, { signal: queuedClient.signal })
  const after = runner.fit('centroid', small.x, small.names)
  queuedClient.abort()
  assert.equal(await codeOf(queued), 'REQUEST_ABORTED')
  assert.equal(runner.queued, 1)
  setTimeout(() => runningClient.abort(), 100)
  assert.equal(await codeOf(running), 'REQUEST_ABORTED')
  assert.deepEqual((await after).probe.labels, ['class-0', 'class-1'])
  assert.ok(Date.now() - started < 5000, 'the aborted fits did not run to the end')
})

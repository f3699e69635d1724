/**
 * Decode admission: the concurrency bound holds, the byte budget refuses with its own 503 code and
 * Retry-After (never QUEUE_FULL), waiting is FIFO, and bytes come back after success, failure and a
 * client that went away while waiting. A request's images take turns (AdmissionTurns), so a request
 * larger than the budget is served on an idle server; over HTTP, with the budget held elsewhere, it gets
 * the 503 with per-image errors, and the budget is whole again afterwards. An image costs what its
 * decode holds (decodeCostBytes).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import sharp from 'sharp'
import { AdmissionTurns, DecodeAdmission } from '../../src/imaging/decode-admission.js'
import { decodeAdmission } from '../../src/imaging/eval-transform.js'
import { decodeCostBytes, inspectImage } from '../../src/imaging/decode.js'
import { ApiError } from '../../src/errors.js'
import { postJson, startServer } from '../helpers/server.js'
import { expectProblem } from '../helpers/problem.js'

function gate (): { promise: Promise<void>, open: () => void } {
  let open = (): void => {}
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

test('at most maxConcurrent tasks run; the rest wait in order', async () => {
  const admission = new DecodeAdmission({ maxConcurrent: 2, budgetBytes: 1000, retryAfterSeconds: 3 })
  const gates = [gate(), gate(), gate(), gate()]
  const started: number[] = []
  const runs = gates.map(async (g, i) => await admission.run(10, async () => { started.push(i); await g.promise; return i }))
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(started, [0, 1])
  assert.deepEqual(admission.state, { admittedBytes: 40, running: 2, waiting: 2 })
  gates[1].open()
  await runs[1]
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(started, [0, 1, 2], 'the first waiter got the freed slot')
  gates[0].open(); gates[2].open(); gates[3].open()
  assert.deepEqual(await Promise.all(runs), [0, 1, 2, 3])
  assert.deepEqual(admission.state, { admittedBytes: 0, running: 0, waiting: 0 })
})

test('the byte budget refuses with 503 DECODE_BUDGET_EXCEEDED and Retry-After, and frees bytes after failures', async () => {
  const admission = new DecodeAdmission({ maxConcurrent: 1, budgetBytes: 100, retryAfterSeconds: 3 })
  const g = gate()
  const first = admission.run(60, async () => await g.promise)
  await assert.rejects(admission.run(50, async () => 'never'), (e: ApiError) => {
    assert.equal(e.code, 'DECODE_BUDGET_EXCEEDED')
    assert.equal(e.status, 503)
    assert.equal(e.headers['retry-after'], '3')
    return true
  })
  const fits = admission.run(40, async () => 'fits') // within the budget: waits for the slot
  g.open()
  await first
  assert.equal(await fits, 'fits')
  await assert.rejects(admission.run(10, async () => { throw new Error('decode failed') }), /decode failed/)
  assert.deepEqual(admission.state, { admittedBytes: 0, running: 0, waiting: 0 })
})

test('a waiter whose client went away leaves the queue and returns its bytes', async () => {
  const admission = new DecodeAdmission({ maxConcurrent: 1, budgetBytes: 100, retryAfterSeconds: 1 })
  const g = gate()
  const first = admission.run(30, async () => await g.promise)
  const controller = new AbortController()
  const waiting = admission.run(30, async () => 'ran', controller.signal)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(admission.state.waiting, 1)
  controller.abort()
  await assert.rejects(waiting, (e: ApiError) => e.code === 'REQUEST_ABORTED')
  assert.deepEqual(admission.state, { admittedBytes: 30, running: 1, waiting: 0 })
  g.open()
  await first
  assert.equal(admission.state.admittedBytes, 0)
})

test('over HTTP: a request larger than the budget is decoded in turns on an idle server; with the budget held elsewhere it gets 503 DECODE_BUDGET_EXCEEDED with Retry-After and per-image errors', async (t) => {
  // budget = 3 x maxImagePixels: one image at the pixel limit fits, two at once do not
  const server = await startServer(t, { maxImagePixels: 400_000, decodeBudgetBytes: 1_200_000, retryAfterSeconds: 2 })
  const big = await sharp({ create: { width: 640, height: 600, channels: 3, background: { r: 9, g: 99, b: 199 } } }).png().toBuffer()
  const input = `data:image/png;base64,${big.toString('base64')}`
  assert.equal((await postJson(`${server.url}/v1/embeddings`, { input })).status, 200)
  const both = await postJson(`${server.url}/v1/embeddings`, { input: [input, input] })
  assert.equal(both.status, 200, 'nothing else in flight: the two images take turns (a 503 here could never be cured by a retry)')
  // another request holds most of the budget
  const held = gate()
  const holder = decodeAdmission()!.run(300_000, async () => await held.promise)
  const two = await postJson(`${server.url}/v1/embeddings`, { input: [input, input] })
  assert.equal(two.headers.get('retry-after'), '2')
  const problem = await expectProblem(two, 503, 'DECODE_BUDGET_EXCEEDED') as any
  assert.deepEqual(problem.errors.map((e: any) => [e.index, e.code]), [[0, 'DECODE_BUDGET_EXCEEDED'], [1, 'DECODE_BUDGET_EXCEEDED']])
  assert.match(problem.errors[1].detail, /not decoded: another image of this request was refused/)
  held.open()
  await holder
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  assert.match(metrics, /^clmae_decode_admitted_bytes 0$/m, 'every admitted byte was returned')
  assert.equal((await postJson(`${server.url}/v1/embeddings`, { input: [input, input] })).status, 200)
})

test('classifier examples in chunks: a chunk refused for the budget ends the request, the later chunks are not embedded', async (t) => {
  const server = await startServer(t, { maxImagesPerRequest: 2, retryAfterSeconds: 2 })
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 30, b: 30 } } }).png().toBuffer()
  const input = `data:image/png;base64,${png.toString('base64')}`
  const examples = Array.from({ length: 6 }, (_, i) => ({ label: i % 2 === 0 ? 'a' : 'b', input }))
  const admission = decodeAdmission()!
  const held = gate()
  const holder = admission.run(admission.limits.budgetBytes, async () => await held.promise) // the whole budget, elsewhere
  try {
    const created = await postJson(`${server.url}/v1/classifiers`, { name: 'refused', examples })
    assert.equal(created.headers.get('retry-after'), '2')
    const problem = await expectProblem(created, 503, 'DECODE_BUDGET_EXCEEDED') as any
    assert.deepEqual(problem.errors.map((e: any) => e.index), [0, 1], 'only the first chunk was tried')
  } finally {
    held.open()
    await holder
  }
})

test('a request\'s turns: in order, at most maxConcurrent at once and within the budget beside its own; after a refusal the rest never start', async () => {
  const limits = { maxConcurrent: 2, budgetBytes: 100 }
  const turns = new AdmissionTurns(limits)
  const gates = [gate(), gate(), gate()]
  const started: number[] = []
  const runs = gates.map(async (g, i) => await turns.run(60, async () => { started.push(i); await g.promise; return i }))
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(started, [0], '60 + 60 > 100: the second waits for the first')
  gates[0].open()
  await runs[0]
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(started, [0, 1])
  gates[1].open(); gates[2].open()
  assert.deepEqual(await Promise.all(runs), [0, 1, 2])

  const refusing = new AdmissionTurns({ maxConcurrent: 1, budgetBytes: 100 })
  const tried: number[] = []
  const refused = new ApiError('DECODE_BUDGET_EXCEEDED', 'full', { headers: { 'retry-after': '1' } })
  const outcomes = await Promise.allSettled([0, 1, 2].map(async (i) => await refusing.run(10, async () => { tried.push(i); if (i === 0) throw refused; return i })))
  assert.deepEqual(tried, [0], 'the images after the refused one were not decoded')
  assert.deepEqual(outcomes.map((o) => o.status === 'rejected' ? (o.reason as ApiError).code : 'ok'), ['DECODE_BUDGET_EXCEEDED', 'DECODE_BUDGET_EXCEEDED', 'DECODE_BUDGET_EXCEEDED'])
  assert.equal(((outcomes[2] as PromiseRejectedResult).reason as ApiError).headers['retry-after'], '1')
})

test('an image costs what its decode holds: a rotated 16-bit RGBA PNG, a WebP and a GIF more than 3 bytes per pixel', async () => {
  const LIMITS = { maxImageBytes: 1e9, maxImagePixels: 1e9, minImageSide: 1, allowedFormats: ['png', 'jpeg', 'webp', 'gif'] }
  const W = 100
  const H = 80
  const rgba = (): sharp.Sharp => sharp({ create: { width: W, height: H, channels: 4, background: { r: 9, g: 99, b: 199, alpha: 0.5 } } })
  const cost = async (bytes: Buffer): Promise<number> => decodeCostBytes(await inspectImage(bytes, LIMITS))
  // measured peaks at 8000 x 5000 (decode.ts): 3.4, 11, 8.1-8.5 and 7.5 bytes per pixel
  assert.equal(await cost(await rgba().removeAlpha().png().toBuffer()), W * H * 3, 'a plain 8-bit RGB PNG streams: its output only')
  assert.ok(await cost(await rgba().toColourspace('rgb16').withMetadata({ orientation: 6 }).png().toBuffer()) >= W * H * (3 + 8), 'rotated 16-bit RGBA: the whole frame is copied to rotate it')
  assert.ok(await cost(await rgba().webp({ lossless: true }).toBuffer()) >= W * H * 8, 'WebP decodes whole RGBA frames')
  assert.ok(await cost(await rgba().gif().toBuffer()) >= W * H * 7, 'GIF decodes whole RGBA frames')
})

test('an image that needs more than the whole budget is refused with 413 IMAGE_TOO_MANY_PIXELS, not a 503 that no retry can cure', async () => {
  const admission = new DecodeAdmission({ maxConcurrent: 1, budgetBytes: 100, retryAfterSeconds: 3 })
  await assert.rejects(admission.run(101, async () => 'never'), (e: ApiError) => e.code === 'IMAGE_TOO_MANY_PIXELS' && e.status === 413)
  assert.equal(await admission.run(100, async () => 'fits'), 'fits')
  assert.deepEqual(admission.state, { admittedBytes: 0, running: 0, waiting: 0 })
})

test('a wait for a slot ends at the request deadline with 504 DEADLINE_EXCEEDED: its bytes return, its image is never decoded', async () => {
  const admission = new DecodeAdmission({ maxConcurrent: 1, budgetBytes: 100, retryAfterSeconds: 1 })
  const g = gate()
  const first = admission.run(30, async () => await g.promise)
  let ran = false
  const late = admission.run(30, async () => { ran = true }, undefined, Date.now() + 50)
  const opened = setTimeout(() => g.open(), 2_000) // without the deadline, the wait would end here and the image be decoded
  await assert.rejects(late, (e: ApiError) => e.code === 'DEADLINE_EXCEEDED' && e.status === 504)
  assert.equal(ran, false)
  assert.deepEqual(admission.state, { admittedBytes: 30, running: 1, waiting: 0 })
  await assert.rejects(admission.run(10, async () => 'x', undefined, Date.now() - 1), (e: ApiError) => e.code === 'DEADLINE_EXCEEDED')
  clearTimeout(opened)
  g.open()
  await first
  assert.deepEqual(admission.state, { admittedBytes: 0, running: 0, waiting: 0 })
})

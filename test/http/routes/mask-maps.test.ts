/**
 * POST /v1/mask-maps against the real app on 127.0.0.1:0 with the bundles in models/.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import sharp from 'sharp'
import { selectTopk } from '../../../src/features/selection.js'
import { BASELINE_MODEL, DEFAULT_MODEL, dataUri, postJson, startServer } from '../../helpers/server.js'
import { expectProblem } from '../../helpers/problem.js'

const PHOTO = readFileSync(new URL('../../fixtures/preprocess/large.jpg', import.meta.url))
const ROTATED = readFileSync(new URL('../../fixtures/preprocess/exif-rotate-6.jpg', import.meta.url))
const server = await startServer({ after: (fn: () => Promise<void> | void) => { after(async () => { await fn() }) } })
const url = `${server.url}/v1/mask-maps`

interface MaskMap {
  model: string
  model_sha256: string
  graph_sha256: Record<string, string>
  grid: { rows: number, cols: number }
  patch_size: number
  mask_ratio: number
  num_kept: number
  keep_score: number[][]
  mask_probability: number[][]
  mask: number[][]
  summary: Record<string, number>
  preprocessing: Record<string, unknown> & { input: { format: string, width: number, height: number } }
  heatmap_png?: string
}

test('JSON data URI: keep scores, mask probability, top-K mask, summary, sha256 and preprocessing', async () => {
  const response = await postJson(url, { input: dataUri(PHOTO, 'image/jpeg') })
  const body = await response.json() as MaskMap
  assert.equal(response.status, 200, JSON.stringify(body))
  assert.equal(body.model, DEFAULT_MODEL)
  assert.deepEqual(body.grid, { rows: 8, cols: 8 })
  assert.equal(body.patch_size, 8)
  assert.equal(body.mask_ratio, 0.75) // the bundle's
  assert.equal(body.num_kept, 16)
  const scores = body.keep_score.flat()
  assert.equal(scores.length, 64)
  for (const s of scores) assert.ok(s >= 0 && s <= 1) // a sigmoid; the trained module's saturate to 1.0 in float32
  body.mask_probability.flat().forEach((m, t) => assert.ok(Math.abs(m - (1 - scores[t])) < 1e-12))
  assert.deepEqual(body.mask.flat(), Array.from(selectTopk(scores, 16).mask))
  assert.equal(body.mask.flat().filter((v) => v === 1).length, 48)
  const mean = scores.reduce((a, b) => a + b, 0) / 64
  assert.ok(Math.abs(body.summary.mean - mean) < 1e-9)
  assert.ok(body.summary.min <= body.summary.mean && body.summary.mean <= body.summary.max)
  assert.ok(body.summary.entropy_bits > 0 && body.summary.entropy_bits <= 6 + 1e-9)
  const models = await (await fetch(`${server.url}/v1/models`)).json() as { data: Array<{ id: string, sha256: Record<string, string>, manifest: { eval_transform: Record<string, unknown> } }> }
  const info = models.data.find((m) => m.id === DEFAULT_MODEL)!
  assert.equal(body.model_sha256, info.sha256.keep_scores)
  assert.deepEqual(body.graph_sha256, info.sha256)
  const { input, resize, ...transform } = body.preprocessing
  assert.deepEqual(transform, info.manifest.eval_transform)
  assert.equal(resize, 'sharp', 'the default resize is the fast path, and the answer names it')
  assert.deepEqual(input, { format: 'jpeg', width: 512, height: 384 })
  assert.equal(body.heatmap_png, undefined)
  assert.ok(response.headers.get('x-inference-time') !== null)
})

test('mask_ratio and heatmap overlay; the mask follows the ratio', async () => {
  const response = await postJson(url, { input: dataUri(PHOTO, 'image/jpeg'), mask_ratio: 0.5, heatmap: 'overlay' })
  const body = await response.json() as MaskMap
  assert.equal(response.status, 200)
  assert.equal(body.num_kept, 32)
  assert.equal(body.mask.flat().filter((v) => v === 0).length, 32)
  const meta = await sharp(Buffer.from(body.heatmap_png!, 'base64')).metadata()
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 256, 256])
})

test('raw image body with options in the query string; EXIF orientation is reported', async () => {
  const response = await fetch(`${url}?mask_ratio=0.6&heatmap=png`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: ROTATED })
  const body = await response.json() as MaskMap
  assert.equal(response.status, 200, JSON.stringify(body))
  assert.equal(body.mask_ratio, 0.6)
  assert.equal(body.num_kept, 25) // floor(64 * 0.4 + 1e-9)
  assert.deepEqual(body.preprocessing.input, { format: 'jpeg', width: 90, height: 120 })
  assert.ok(body.heatmap_png !== undefined)
})

test('multipart: one file part; two files are refused', async () => {
  const form = new FormData()
  form.append('image', new Blob([PHOTO], { type: 'image/jpeg' }), 'photo.jpg')
  form.append('mask_ratio', '0.25')
  const response = await fetch(url, { method: 'POST', body: form })
  const body = await response.json() as MaskMap
  assert.equal(response.status, 200, JSON.stringify(body))
  assert.equal(body.num_kept, 48)
  const two = new FormData()
  two.append('a', new Blob([PHOTO], { type: 'image/jpeg' }), 'a.jpg')
  two.append('b', new Blob([PHOTO], { type: 'image/jpeg' }), 'b.jpg')
  await expectProblem(await fetch(url, { method: 'POST', body: two }), 413, 'BATCH_TOO_LARGE')
})

test('plain MAE bundle: 422 MODEL_NO_MASKING_MODULE', async () => {
  await expectProblem(await postJson(url, { input: dataUri(PHOTO, 'image/jpeg'), model: BASELINE_MODEL }), 422, 'MODEL_NO_MASKING_MODULE')
})

test('bad inputs: mask ratio out of range, a ratio that keeps nothing, wrong types, unknown model, not an image', async () => {
  const input = dataUri(PHOTO, 'image/jpeg')
  await expectProblem(await postJson(url, { input, mask_ratio: 1.5 }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url, { input, mask_ratio: 0 }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url, { input, mask_ratio: 0.999 }), 400, 'MASK_RATIO_INVALID') // K = 0
  await expectProblem(await postJson(url, { input, mask_ratio: '0.5' }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url, { input, heatmap: 'jpeg' }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url, { input: [input, input] }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url, { input, model: 'nope' }), 404, 'MODEL_NOT_FOUND')
  await expectProblem(await postJson(url, { input: Buffer.from('hello, not an image').toString('base64') }), 422, 'IMAGE_UNREADABLE')
  await expectProblem(await postJson(url, {}), 400, 'REQUEST_VALIDATION_FAILED')
})

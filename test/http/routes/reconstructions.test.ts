/**
 * POST /v1/reconstructions against the real app on 127.0.0.1:0 with the bundles in models/.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import sharp from 'sharp'
import { BASELINE_MODEL, DEFAULT_MODEL, dataUri, postJson, startServer } from '../../helpers/server.js'
import { expectProblem } from '../../helpers/problem.js'

const PHOTO = readFileSync(new URL('../../fixtures/preprocess/large.jpg', import.meta.url))
const input = dataUri(PHOTO, 'image/jpeg')
const server = await startServer({ after: (fn: () => Promise<void> | void) => { after(async () => { await fn() }) } })
const url = `${server.url}/v1/reconstructions`

interface Reconstruction {
  model: string
  model_sha256: string
  graph_sha256: Record<string, string>
  masking: string
  mask_ratio: number
  num_kept: number
  seed?: number
  grid: { rows: number, cols: number }
  mask: number[][]
  masked_patches: number[]
  panels: Record<'original' | 'masked' | 'reconstruction' | 'reconstruction_visible', string>
  patch_error: Array<Array<number | null>>
  mean_patch_error: number
  norm_pix: { used: boolean, uses_true_patch_statistics: boolean }
  preprocessing: { input: { width: number } }
}

async function post (body: Record<string, unknown>): Promise<Reconstruction> {
  const response = await postJson(url, { input, ...body })
  const json = await response.json() as Reconstruction
  assert.equal(response.status, 200, JSON.stringify(json))
  return json
}

test('learned masking (default): the mask-maps mask, errors on removed patches only, four 256 px panels', async () => {
  const body = await post({})
  assert.equal(body.model, DEFAULT_MODEL)
  assert.equal(body.masking, 'learned')
  assert.equal(body.mask_ratio, 0.75)
  assert.equal(body.num_kept, 16)
  assert.equal(body.model_sha256, body.graph_sha256.decoder)
  const mask = body.mask.flat()
  assert.deepEqual(body.masked_patches, mask.flatMap((v, t) => v === 1 ? [t] : []))
  const maskMap = await (await postJson(`${server.url}/v1/mask-maps`, { input })).json() as { mask: number[][] }
  assert.deepEqual(body.mask, maskMap.mask, 'learned reconstruction mask = mask-maps mask')
  const errors = body.patch_error.flat()
  errors.forEach((e, t) => assert.equal(e === null, mask[t] === 0, `patch ${t}`))
  const removed = errors.filter((e): e is number => e !== null)
  assert.equal(removed.length, 48)
  for (const e of removed) assert.ok(e >= 0 && Number.isFinite(e))
  assert.ok(Math.abs(body.mean_patch_error - removed.reduce((a, b) => a + b, 0) / 48) < 1e-9)
  assert.deepEqual(body.norm_pix, { used: true, uses_true_patch_statistics: true })
  for (const key of ['original', 'masked', 'reconstruction', 'reconstruction_visible'] as const) {
    const meta = await sharp(Buffer.from(body.panels[key], 'base64')).metadata()
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 256, 256], key)
  }
  // reconstruction_visible shows the original on kept patches: compare one kept patch's pixels
  const original = await sharp(Buffer.from(body.panels.original, 'base64')).raw().toBuffer()
  const visible = await sharp(Buffer.from(body.panels.reconstruction_visible, 'base64')).raw().toBuffer()
  const kept = mask.indexOf(0)
  const [r, c] = [Math.floor(kept / 8), kept % 8]
  const at = ((r * 32 + 5) * 256 + c * 32 + 5) * 3 // a pixel inside the patch (32 display px per patch)
  assert.deepEqual(visible.subarray(at, at + 3), original.subarray(at, at + 3))
})

test('random masking: seeds are echoed and replay the mask; a drawn seed comes back', async () => {
  const a = await post({ masking: 'random', seed: 42, mask_ratio: 0.3 })
  const b = await post({ masking: 'random', seed: 42, mask_ratio: 0.3 })
  assert.equal(a.seed, 42)
  assert.equal(a.num_kept, 44) // floor(64 * 0.7)
  assert.deepEqual(a.mask, b.mask)
  const c = await post({ masking: 'random', seed: 43, mask_ratio: 0.3 })
  assert.notDeepEqual(c.mask, a.mask)
  const drawn = await post({ masking: 'random' })
  assert.ok(Number.isInteger(drawn.seed))
  const replay = await post({ masking: 'random', seed: drawn.seed })
  assert.deepEqual(replay.mask, drawn.mask)
  // the baseline MAE bundle reconstructs with random masks too
  const mae = await post({ masking: 'random', seed: 1, model: BASELINE_MODEL })
  assert.equal(mae.model, BASELINE_MODEL)
})

test('given masking: exactly the listed patches are removed', async () => {
  const body = await post({ masking: 'given', masked_patches: [63, 0, 9] })
  assert.deepEqual(body.masked_patches, [0, 9, 63])
  assert.equal(body.num_kept, 61)
  assert.equal(body.mask_ratio, 3 / 64)
  assert.equal(body.patch_error.flat().filter((e) => e !== null).length, 3)
})

test('Accept: image/png gives the four panels side by side', async () => {
  const response = await postJson(url, { input, masking: 'random', seed: 5 }, { accept: 'image/png' })
  assert.equal(response.status, 200)
  assert.equal(response.headers.get('content-type'), 'image/png')
  assert.equal(response.headers.get('x-seed'), '5')
  assert.equal(response.headers.get('x-num-kept'), '16')
  const meta = await sharp(Buffer.from(await response.arrayBuffer())).metadata()
  assert.deepEqual([meta.width, meta.height], [4 * 256 + 3 * 4, 256])
})

test('raw image body with the options in the query string', async () => {
  const response = await fetch(`${url}?masking=given&masked_patches=1&masked_patches=5`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: PHOTO })
  const body = await response.json() as Reconstruction
  assert.equal(response.status, 200, JSON.stringify(body))
  assert.deepEqual(body.masked_patches, [1, 5])
})

test('multipart: options as text fields, masked_patches repeated once per index (or sent once)', async () => {
  const form = new FormData()
  form.append('image', new Blob([PHOTO], { type: 'image/jpeg' }), 'photo.jpg')
  form.append('masking', 'given')
  form.append('masked_patches', '7')
  form.append('masked_patches', '3')
  const response = await fetch(url, { method: 'POST', body: form })
  const body = await response.json() as Reconstruction
  assert.equal(response.status, 200, JSON.stringify(body))
  assert.deepEqual(body.masked_patches, [3, 7])
  const one = new FormData()
  one.append('image', new Blob([PHOTO], { type: 'image/jpeg' }), 'photo.jpg')
  one.append('masking', 'given')
  one.append('masked_patches', '12')
  const single = await (await fetch(url, { method: 'POST', body: one })).json() as Reconstruction
  assert.deepEqual(single.masked_patches, [12])
})

test('bad inputs: indices, counts, conflicting options, ratios, types, MAE bundle with learned masking', async () => {
  await expectProblem(await postJson(url, { input, masking: 'given' }), 400, 'MASK_PATCHES_MISSING')
  await expectProblem(await postJson(url, { input, masking: 'given', masked_patches: [64] }), 400, 'MASK_PATCH_OUT_OF_RANGE')
  await expectProblem(await postJson(url, { input, masking: 'given', masked_patches: [-1] }), 400, 'MASK_PATCH_OUT_OF_RANGE')
  await expectProblem(await postJson(url, { input, masking: 'given', masked_patches: [3, 3] }), 400, 'MASK_PATCH_DUPLICATE')
  await expectProblem(await postJson(url, { input, masking: 'given', masked_patches: [] }), 400, 'MASK_PATCH_COUNT')
  await expectProblem(await postJson(url, { input, masking: 'given', masked_patches: Array.from({ length: 64 }, (_, i) => i) }), 400, 'MASK_PATCH_COUNT')
  await expectProblem(await postJson(url, { input, masking: 'given', masked_patches: [1], mask_ratio: 0.5 }), 400, 'MASK_OPTION_CONFLICT')
  await expectProblem(await postJson(url, { input, masking: 'learned', seed: 1 }), 400, 'MASK_OPTION_CONFLICT')
  await expectProblem(await postJson(url, { input, masking: 'random', masked_patches: [1] }), 400, 'MASK_OPTION_CONFLICT')
  await expectProblem(await postJson(url, { input, masking: 'random', mask_ratio: 0.999 }), 400, 'MASK_RATIO_INVALID')
  await expectProblem(await postJson(url, { input, mask_ratio: 1 }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url, { input, masking: 'everything' }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url, { input, masking: 'given', masked_patches: '1,2' }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url, { input, masking: 'given', masked_patches: [1.5] }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url, { input, masking: 'random', seed: -1 }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url, { input, model: BASELINE_MODEL }), 422, 'MODEL_NO_MASKING_MODULE')
  await expectProblem(await postJson(url, { input: 'not base64 !!' }), 400, 'IMAGE_BASE64_INVALID')
  // option errors are found before the image is decoded
  const notAnImage = Buffer.from('hello').toString('base64')
  await expectProblem(await postJson(url, { input: notAnImage, masking: 'given' }), 400, 'MASK_PATCHES_MISSING')
  await expectProblem(await postJson(url, { input: notAnImage, model: BASELINE_MODEL }), 422, 'MODEL_NO_MASKING_MODULE')
  await expectProblem(await postJson(url, { input: notAnImage, masking: 'random' }), 422, 'IMAGE_UNREADABLE')
})

/**
 * POST /v1/embeddings against a real server (127.0.0.1, port 0) with the shipped bundles: the three input
 * forms, options, the openai client, parity with the reference outputs written by training/, and bad inputs.
 * Tolerance for reference parity: 1e-4 absolute (ONNX vs PyTorch, style rule 12).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import OpenAI from 'openai'
import { embedPixels } from '../../../src/features/embed.js'
import type { AppDeps } from '../../../src/app.js'
import { createOnnxBackend } from '../../../src/inference/onnx-backend.js'
import { DEFAULT_MODEL, BASELINE_MODEL, IMAGES_DIR, dataUri, postJson, startServer, type TestServer } from '../../helpers/server.js'
import { expectProblem as expectCoreProblem } from '../../helpers/problem.js'

const TOLERANCE = 1e-4
const png = readFileSync(new URL('gradient.png', IMAGES_DIR))
const webp = readFileSync(new URL('gradient.webp', IMAGES_DIR))
const jpeg = readFileSync(new URL('exif-rotated.jpg', IMAGES_DIR))

let server: TestServer
before(async () => { server = await startServer(undefined, { maxImagesPerRequest: 4, bodyLimitBytes: 200_000, maxImageBytes: 100_000 }) })
after(() => server.app.close())

const url = () => `${server.url}/v1/embeddings`

function norm (v: number[]): number {
  return Math.sqrt(v.reduce((a, x) => a + x * x, 0))
}

function decodeBase64Floats (s: string): Float32Array {
  const bytes = Buffer.from(s, 'base64')
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)
}

async function expectProblem (response: Response, status: number, code: string): Promise<void> {
  const body = await expectCoreProblem(response, status, code)
  assert.equal(body.status, status)
  assert.ok(body.title.length > 0 && body.detail.length > 0 && body.type.includes(code))
}

test('JSON with one base64 image: OpenAI shape, unit norm, D values, usage, timing headers', async () => {
  const response = await postJson(url(), { input: png.toString('base64') })
  assert.equal(response.status, 200)
  assert.ok(Number(response.headers.get('x-inference-time')) > 0)
  assert.ok(response.headers.get('x-queue-time') !== null && response.headers.get('server-timing')?.includes('inference;dur='))
  assert.ok((response.headers.get('x-request-id') ?? '').length > 0)
  const body = await response.json() as any
  assert.equal(body.object, 'list')
  assert.equal(body.model, DEFAULT_MODEL)
  assert.equal(body.data.length, 1)
  assert.equal(body.data[0].object, 'embedding')
  assert.equal(body.data[0].index, 0)
  assert.equal(body.data[0].embedding.length, 192)
  assert.ok(Math.abs(norm(body.data[0].embedding) - 1) < 1e-5)
  assert.deepEqual(body.usage, { prompt_tokens: 0, total_tokens: 0, images: 1, pixels: 48 * 40 })
})

test('a list of data URIs, multipart files and a raw body give the same embeddings for the same image', async () => {
  const list = await (await postJson(url(), { input: [dataUri(png, 'image/png'), dataUri(webp, 'image/webp'), dataUri(jpeg, 'image/jpeg')] })).json() as any
  assert.deepEqual(list.data.map((d: any) => d.index), [0, 1, 2])
  // lossless WebP of the same pixels: the same embedding
  list.data[0].embedding.forEach((v: number, i: number) => assert.ok(Math.abs(v - list.data[1].embedding[i]) < 1e-5))

  const form = new FormData()
  form.append('first', new Blob([png], { type: 'image/png' }), 'a.png')
  form.append('second', new Blob([jpeg], { type: 'image/jpeg' }), 'b.jpg')
  form.append('pooling', 'mean')
  const multipart = await (await fetch(url(), { method: 'POST', body: form })).json() as any
  assert.equal(multipart.data.length, 2)
  multipart.data[1].embedding.forEach((v: number, i: number) => assert.ok(Math.abs(v - list.data[2].embedding[i]) < 1e-5))

  const raw = await fetch(`${url()}?encoding_format=float`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png })
  assert.equal(raw.status, 200)
  const rawBody = await raw.json() as any
  rawBody.data[0].embedding.forEach((v: number, i: number) => assert.ok(Math.abs(v - list.data[0].embedding[i]) < 1e-5))
})

test('options: base64 is little-endian float32 of the same values; cls differs from mean; normalize false; patch tokens', async () => {
  const input = png.toString('base64')
  const floats = (await (await postJson(url(), { input, normalize: false })).json() as any).data[0].embedding as number[]
  const b64 = (await (await postJson(url(), { input, normalize: false, encoding_format: 'base64' })).json() as any).data[0].embedding as string
  const decoded = decodeBase64Floats(b64)
  assert.equal(decoded.length, 192)
  floats.forEach((v, i) => assert.equal(v, decoded[i]))
  assert.ok(Math.abs(norm(floats) - 1) > 1e-3, 'normalize false keeps the raw norm')

  const cls = (await (await postJson(url(), { input, pooling: 'cls' })).json() as any).data[0].embedding as number[]
  const mean = (await (await postJson(url(), { input, pooling: 'mean' })).json() as any).data[0].embedding as number[]
  assert.ok(cls.some((v, i) => Math.abs(v - mean[i]) > 1e-3))

  const withTokens = await (await postJson(url(), { input, include_patch_tokens: true, normalize: false })).json() as any
  const tokens = withTokens.data[0].patch_tokens as number[][]
  assert.equal(tokens.length, 64)
  assert.equal(tokens[0].length, 192)
  // mean pooling = the average of the patch tokens
  const avg = tokens[0].map((_, d) => tokens.reduce((a, row) => a + row[d], 0) / tokens.length)
  avg.forEach((v, d) => assert.ok(Math.abs(v - floats[d]) < 1e-4))
})

test('the other loaded model is chosen with `model`; an unknown one is 404 MODEL_NOT_FOUND', async () => {
  const body = await (await postJson(url(), { input: png.toString('base64'), model: BASELINE_MODEL })).json() as any
  assert.equal(body.model, BASELINE_MODEL)
  await expectProblem(await postJson(url(), { input: png.toString('base64'), model: 'nope' }), 404, 'MODEL_NOT_FOUND')
})

test('the official openai client works (it asks for base64 and decodes it)', async () => {
  const client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 })
  const response = await client.embeddings.create({ model: DEFAULT_MODEL, input: dataUri(png, 'image/png') })
  assert.equal(response.data.length, 1)
  assert.equal(response.data[0].embedding.length, 192)
  assert.ok(Math.abs(norm(response.data[0].embedding) - 1) < 1e-5)
  const plain = (await (await postJson(url(), { input: dataUri(png, 'image/png') })).json() as any).data[0].embedding as number[]
  plain.forEach((v, i) => assert.ok(Math.abs(v - response.data[0].embedding[i]) < 1e-6))
})

test('embeddings equal the reference outputs of training/ for the same bundle (matched by sha256), within 1e-4', async () => {
  const dir = new URL('../../fixtures/reference/', import.meta.url)
  for (const model of server.app.models.list()) {
    // an int8 variant's numbers differ between onnxruntime versions (Python 1.32 vs node 1.23: 0.013 here);
    // test/bundles/int8-bundle.test.ts compares it with its fp32 source in this runtime instead
    if (model.manifest.quantization !== undefined) continue
    const refs = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8')))
    const ref = refs.find((r) => r.graph_sha256?.encoder === model.sha256.encoder)
    assert.ok(ref !== undefined, `no reference in test/fixtures/reference/ for ${model.id} with encoder sha256 ${model.sha256.encoder}: re-run python -m clmae.tools.write_reference`)
    const input = decodeBase64Floats(ref.input.base64) // (N, 3, 64, 64)
    const count = ref.input.shape[0]
    for (const [pooling, expected] of [['cls', ref.embeddings.cls], ['mean', ref.embeddings.mean_patch_tokens]] as const) {
      const out = await embedPixels(model, new Float32Array(input), count, { pooling, normalize: false, includePatchTokens: true })
      for (let n = 0; n < count; n++) {
        const diff = Math.max(...Array.from(out.embeddings[n], (v, d) => Math.abs(v - expected[n][d])))
        assert.ok(diff <= TOLERANCE, `${model.id} ${pooling} image ${n}: max |diff| ${diff}`)
      }
    }
    const latent = decodeBase64Floats(ref.embeddings.latent.base64) // (N, 1+L, D)
    const out = await embedPixels(model, new Float32Array(input), count, { pooling: 'mean', normalize: false, includePatchTokens: true })
    const rowSize = latent.length / count
    for (let n = 0; n < count; n++) {
      const tokens = out.patchTokens![n] // (L, D) = latent rows 1..L
      let diff = 0
      for (let i = 0; i < tokens.length; i++) diff = Math.max(diff, Math.abs(tokens[i] - latent[n * rowSize + 192 + i]))
      assert.ok(diff <= TOLERANCE, `${model.id} patch tokens image ${n}: max |diff| ${diff}`)
    }
  }
})

test('bad inputs: each a 4xx problem with its own code, never a 500', async () => {
  const read = (name: string) => readFileSync(new URL(name, IMAGES_DIR))
  await expectProblem(await postJson(url(), { input: read('truncated.jpg').toString('base64') }), 422, 'IMAGE_UNREADABLE')
  await expectProblem(await postJson(url(), { input: read('huge-declared.png').toString('base64') }), 413, 'IMAGE_TOO_MANY_PIXELS')
  await expectProblem(await postJson(url(), { input: read('not-an-image.txt').toString('base64') }), 422, 'IMAGE_UNREADABLE')
  await expectProblem(await postJson(url(), { input: read('tiny.png').toString('base64') }), 422, 'IMAGE_TOO_SMALL')
  await expectProblem(await fetch(url(), { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: read('truncated.jpg') }), 422, 'IMAGE_UNREADABLE')
  await expectProblem(await fetch(url(), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' }), 415, 'REQUEST_MEDIA_TYPE_UNSUPPORTED')
  await expectProblem(await fetch(url(), { method: 'POST', headers: { 'content-type': 'image/png' }, body: '' }), 400, 'REQUEST_BODY_EMPTY')
  await expectProblem(await fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '' }), 400, 'REQUEST_BODY_EMPTY')
  await expectProblem(await fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"input": ' }), 400, 'REQUEST_BODY_INVALID')
  await expectProblem(await fetch(url(), { method: 'POST' }), 400, 'REQUEST_BODY_EMPTY')
  await expectProblem(await postJson(url(), {}), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url(), { input: 42 }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url(), { input: png.toString('base64'), normalize: 'yes' }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url(), { input: png.toString('base64'), pooling: 'max' }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url(), { input: [] }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url(), { input: 'not base64 !!' }), 400, 'IMAGE_BASE64_INVALID')
  await expectProblem(await postJson(url(), { input: 'data:image/png,abc' }), 400, 'IMAGE_BASE64_INVALID')
  await expectProblem(await postJson(url(), { input: png.toString('base64'), dimensions: 64 }), 422, 'EMBEDDING_DIMENSIONS_UNSUPPORTED')
  await expectProblem(await fetch(`${url()}?pooling=max`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png }), 400, 'REQUEST_VALIDATION_FAILED')
  const form = new FormData()
  form.append('normalize', 'perhaps')
  form.append('f', new Blob([png], { type: 'image/png' }), 'a.png')
  await expectProblem(await fetch(url(), { method: 'POST', body: form }), 400, 'REQUEST_VALIDATION_FAILED')
  const noFile = new FormData()
  noFile.append('pooling', 'cls')
  await expectProblem(await fetch(url(), { method: 'POST', body: noFile }), 400, 'IMAGE_MISSING')
})

test('limits: a batch over the maximum, an image over the byte limit, a body over the body limit', async () => {
  const b64 = png.toString('base64')
  await expectProblem(await postJson(url(), { input: [b64, b64, b64, b64, b64] }), 413, 'BATCH_TOO_LARGE')
  const form = new FormData()
  for (let i = 0; i < 5; i++) form.append(`f${i}`, new Blob([png], { type: 'image/png' }), `${i}.png`)
  await expectProblem(await fetch(url(), { method: 'POST', body: form }), 413, 'BATCH_TOO_LARGE')
  const big = Buffer.concat([png, Buffer.alloc(120_000)]) // over maxImageBytes (100 kB), under the body limit (200 kB)
  await expectProblem(await fetch(url(), { method: 'POST', headers: { 'content-type': 'image/png' }, body: big }), 413, 'IMAGE_TOO_LARGE')
  await expectProblem(await postJson(url(), { input: big.toString('base64').slice(0, 140_000) }), 413, 'IMAGE_TOO_LARGE')
  const bigForm = new FormData()
  bigForm.append('f', new Blob([big], { type: 'image/png' }), 'big.png')
  await expectProblem(await fetch(url(), { method: 'POST', body: bigForm }), 413, 'IMAGE_TOO_LARGE')
  const huge = Buffer.alloc(300_000) // over the body limit: refused before parsing, for every content type
  await expectProblem(await fetch(url(), { method: 'POST', headers: { 'content-type': 'image/png' }, body: huge }), 413, 'REQUEST_BODY_TOO_LARGE')
  await expectProblem(await postJson(url(), { input: huge.toString('base64') }), 413, 'REQUEST_BODY_TOO_LARGE')
  const hugeForm = new FormData()
  hugeForm.append('a', new Blob([huge.subarray(0, 90_000)]), 'a.png')
  hugeForm.append('b', new Blob([huge.subarray(0, 90_000)]), 'b.png')
  hugeForm.append('c', new Blob([huge.subarray(0, 90_000)]), 'c.png')
  const hugeMultipart = await fetch(url(), { method: 'POST', body: hugeForm })
  assert.equal(hugeMultipart.status, 413, 'multipart bodies obey the body limit too')
})

/** The real onnxruntime sessions, each run slowed down by `delayMs`, to hold the queue open. */
function slowBackends (delayMs: number): AppDeps['backendFactory'] {
  return async (path) => {
    const backend = await createOnnxBackend(path, { executionProvider: 'cpu', intraOpThreads: 1, allowSpinning: false })
    return {
      executionProvider: backend.executionProvider,
      inputNames: backend.inputNames,
      outputNames: backend.outputNames,
      run: async (feeds) => { await new Promise((resolve) => setTimeout(resolve, delayMs)); return backend.run(feeds) },
      close: () => backend.close()
    }
  }
}

/**
 * Real onnxruntime sessions whose runs, once armed (after the start-up warm-up), wait until the test
 * opens the gate; `started` counts the gated runs begun.
 */
function gatedBackends (): { factory: AppDeps['backendFactory'], arm: () => void, open: () => void, started: () => number } {
  let open!: () => void
  const gate = new Promise<void>((resolve) => { open = resolve })
  let started = 0
  let armed = false
  const factory: AppDeps['backendFactory'] = async (path) => {
    const backend = await createOnnxBackend(path, { executionProvider: 'cpu', intraOpThreads: 1, allowSpinning: false })
    return {
      executionProvider: backend.executionProvider,
      inputNames: backend.inputNames,
      outputNames: backend.outputNames,
      run: async (feeds) => {
        if (armed) {
          started++
          await gate
        }
        return backend.run(feeds)
      },
      close: () => backend.close()
    }
  }
  return { factory, arm: () => { armed = true }, open, started: () => started }
}

/** Images waiting in the encoder queues, from /metrics. */
async function encoderQueueDepth (base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text()
  return [...text.matchAll(/^clmae_queue_depth\{[^}]*graph="encoder"[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0)
}

/** Polls until `check` holds (no fixed sleeps: CI machines are slow and shared). */
async function until (check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

test('queue overflow: a small queue answers 503 QUEUE_FULL with Retry-After; the queued requests still succeed', async (t) => {
  const gated = gatedBackends()
  const { url: base } = await startServer(t, { maxQueue: 2, maxBatchSize: 1, maxWaitMs: 0, maxImagesPerRequest: 2, retryAfterSeconds: 2 }, { backendFactory: gated.factory })
  gated.arm()
  t.after(gated.open) // never leave a run hanging if an assertion fails
  const body = { input: png.toString('base64') }
  const first = postJson(`${base}/v1/embeddings`, body)
  await until(() => gated.started() === 1, 'the first request to reach the session')
  const queued = [postJson(`${base}/v1/embeddings`, body), postJson(`${base}/v1/embeddings`, body)] // fill the queue (2)
  await until(async () => await encoderQueueDepth(base) === 2, 'two queued requests')
  const refused = await postJson(`${base}/v1/embeddings`, body)
  assert.equal(refused.status, 503)
  assert.equal(refused.headers.get('retry-after'), '2')
  assert.equal(((await refused.json()) as { code: string }).code, 'QUEUE_FULL')
  gated.open()
  const statuses = await Promise.all([first, ...queued].map(async (r) => (await r).status))
  assert.deepEqual(statuses, [200, 200, 200])
  const metrics = await (await fetch(`${base}/metrics`)).text()
  assert.match(metrics, /clmae_rejections_total\{reason="QUEUE_FULL"\} 1/)
})

test('deadline: a request that cannot finish in time gets 504 DEADLINE_EXCEEDED and its queued work is dropped', async (t) => {
  const { url: base, app } = await startServer(t, { maxBatchSize: 1, maxWaitMs: 0, requestDeadlineMs: 250 }, { backendFactory: slowBackends(400) })
  const body = { input: png.toString('base64') }
  const responses = await Promise.all([postJson(`${base}/v1/embeddings`, body), postJson(`${base}/v1/embeddings`, body)])
  for (const r of responses) {
    assert.equal(r.status, 504)
    assert.equal(((await r.json()) as { code: string }).code, 'DEADLINE_EXCEEDED')
  }
  await app.models.drain()
  const batches = await app.metrics.batchSize.get()
  const encoderRuns = batches.values.find((v) => v.metricName === 'clmae_batch_size_count' && v.labels.graph === 'encoder')?.value ?? 0
  assert.equal(encoderRuns, 1, 'only the first image ran; the second expired in the queue and was dropped')
})

test('client disconnect: queued work of a client that went away is dropped', async (t) => {
  const gated = gatedBackends()
  const { url: base, app } = await startServer(t, { maxBatchSize: 1, maxWaitMs: 0 }, { backendFactory: gated.factory })
  gated.arm()
  t.after(gated.open)
  const body = { input: png.toString('base64') }
  const first = postJson(`${base}/v1/embeddings`, body)
  await until(() => gated.started() === 1, 'the first request to reach the session')
  const controller = new AbortController()
  const gone = fetch(`${base}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: controller.signal })
  await until(async () => await encoderQueueDepth(base) === 1, 'the second request to be queued')
  controller.abort()
  await assert.rejects(gone)
  await until(async () => /clmae_rejections_total\{reason="REQUEST_ABORTED"\} 1/.test(await (await fetch(`${base}/metrics`)).text()), 'the abort to be counted')
  gated.open()
  assert.equal((await first).status, 200)
  await app.models.drain()
  const batches = await app.metrics.batchSize.get()
  const encoderRuns = batches.values.find((v) => v.metricName === 'clmae_batch_size_count' && v.labels.graph === 'encoder')?.value ?? 0
  assert.equal(encoderRuns, 1, 'the disconnected client\'s image never ran')
  assert.equal(gated.started(), 1)
})

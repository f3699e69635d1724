/**
 * One test per defect of the "One way in" issue (2-12), each written to fail on main at f471e1f and
 * run on a real socket where framing matters (chunked, truncated and slow bodies; app.inject would
 * skip Node's HTTP parser). Defect 1 (path spellings) is test/http/ingestion/auth-spellings.test.ts.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import sharp from 'sharp'
import OpenAI from 'openai'
import { isErrorCode } from '../../../src/errors.js'
import { DEFAULT_MODEL, startServer, postJson, type TestServer } from '../../helpers/server.js'
import { expectProblem } from '../../helpers/problem.js'
import { chunked, jsonOf, rawRequest } from '../../helpers/raw-http.js'

const PNG = readFileSync(new URL('../../fixtures/images/gradient.png', import.meta.url))
const JPEG = readFileSync(new URL('../../fixtures/images/exif-rotated.jpg', import.meta.url))
const BODY_LIMIT = 256 * 1024

let server: TestServer
before(async () => {
  server = await startServer(undefined, { bodyLimitBytes: BODY_LIMIT, maxImageBytes: 128 * 1024, classifierBodyLimitBytes: 4 * 1024 * 1024 })
})
after(async () => { await server.app.close() })

/** A multipart body by hand (any casing of the media type, any framing). */
function multipart (parts: Array<{ name: string, filename?: string, type?: string, data: Buffer | string }>, boundary = 'XyZzY0123', close = true): { body: Buffer, type: string } {
  const chunks: Buffer[] = []
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.type !== undefined ? `Content-Type: ${p.type}\r\n` : ''}\r\n`))
    chunks.push(Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data))
    chunks.push(Buffer.from('\r\n'))
  }
  if (close) chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` }
}

function problemOf (response: { status: number, headers: Record<string, string>, body: Buffer }, status: number, code: string): any {
  const body = jsonOf(response)
  assert.equal(response.status, status, JSON.stringify(body))
  assert.equal(response.headers['content-type']?.split(';')[0], 'application/problem+json')
  assert.equal(body.code, code, body.detail)
  return body
}

test('defect 2: a chunked multipart body in any casing has a total byte budget, enforced while it streams', async () => {
  const big = Buffer.alloc(100 * 1024, 7)
  const { body, type } = multipart([1, 2, 3, 4].map((i) => ({ name: `f${i}`, filename: `${i}.png`, type: 'image/png', data: big })))
  assert.ok(body.length > BODY_LIMIT)
  for (const contentType of [type, type.replace('multipart/form-data', 'Multipart/Form-Data'), type.replace('multipart/form-data', 'MULTIPART/FORM-DATA')]) {
    const response = await rawRequest(server.url, {
      method: 'POST', path: '/v1/embeddings',
      headers: [['Content-Type', contentType], ['Transfer-Encoding', 'chunked']],
      body: chunked([body.subarray(0, 150_000), body.subarray(150_000)])
    })
    problemOf(response, 413, 'REQUEST_BODY_TOO_LARGE')
  }
  // a declared length over the budget is refused before the body is read
  const declared = await rawRequest(server.url, { method: 'POST', path: '/v1/classifiers', headers: [['Content-Type', type], ['Content-Length', String(64 * 1024 * 1024)]], body: ['x'] })
  problemOf(declared, 413, 'REQUEST_BODY_TOO_LARGE')
  // classifier routes have their own, larger budget (CLMAE_CLASSIFIER_BODY_LIMIT_BYTES), enforced the same way
  const huge = multipart(Array.from({ length: 48 }, (_, i) => ({ name: 'file', filename: `${i}.png`, type: 'image/png', data: big })))
  const overClassifierBudget = await rawRequest(server.url, {
    method: 'POST', path: '/v1/classifiers', headers: [['Content-Type', huge.type], ['Transfer-Encoding', 'chunked']], body: chunked([huge.body])
  })
  const problem = problemOf(overClassifierBudget, 413, 'REQUEST_BODY_TOO_LARGE')
  assert.match(problem.detail, /CLMAE_CLASSIFIER_BODY_LIMIT_BYTES/)
})

test('defect 3: a truncated multipart body (no closing boundary) is 400 REQUEST_BODY_INVALID on every image route', async () => {
  const { body, type } = multipart([{ name: 'image', filename: 'a.png', type: 'image/png', data: PNG }], 'B0undary', false)
  for (const path of ['/v1/embeddings', '/v1/mask-maps', '/v1/reconstructions', '/v1/classifiers']) {
    const response = await rawRequest(server.url, { method: 'POST', path, headers: [['Content-Type', type], ['Content-Length', String(body.length)]], body: [body] })
    problemOf(response, 400, 'REQUEST_BODY_INVALID')
  }
  // an HTTP body cut short (fewer bytes than Content-Length, then the client stops sending): never a 500
  const cut = await rawRequest(server.url, { method: 'POST', path: '/v1/embeddings', headers: [['Content-Type', type], ['Content-Length', String(body.length + 100)]], body: [body], halfClose: true, timeoutMs: 5000 })
  assert.ok(cut.status === 0 || cut.status === 400 || cut.status === 499, `status ${cut.status}`)
  // a chunked body whose framing breaks off
  const broken = await rawRequest(server.url, { method: 'POST', path: '/v1/embeddings', headers: [['Content-Type', type], ['Transfer-Encoding', 'chunked']], body: chunked([body], false), halfClose: true, timeoutMs: 5000 })
  assert.ok(broken.status === 0 || broken.status === 400 || broken.status === 499, `status ${broken.status}`)
  assert.equal((await fetch(`${server.url}/livez`)).status, 200)
})

test('defect 4: labels that are Object.prototype names work, and the list stays readable', async () => {
  const examples = ['toString', 'constructor', '__proto__', 'hasOwnProperty'].flatMap((label, k) =>
    [0, 1].map((j) => ({ label, embedding: Array.from({ length: 192 }, (_, d) => Math.sin(k * 10 + d + j)) })))
  const created = await postJson(`${server.url}/v1/classifiers`, { examples, model: DEFAULT_MODEL })
  const body = await created.json() as any
  assert.equal(created.status, 201, JSON.stringify(body))
  assert.deepEqual(body.labels.map((l: any) => [l.label, l.count]).sort(), [['__proto__', 2], ['constructor', 2], ['hasOwnProperty', 2], ['toString', 2]])
  const list = await fetch(`${server.url}/v1/classifiers?limit=100`)
  assert.equal(list.status, 200)
})

test('defect 5: multipart creation with 100 examples (over the old 32 fields) works; a text field over its limit is refused, not truncated', async () => {
  const tiny = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 10, g: 20, b: 30 } } }).png().toBuffer()
  const parts: Array<{ name: string, filename?: string, type?: string, data: Buffer | string }> = []
  for (let i = 0; i < 100; i++) {
    const image = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: i % 2 === 0 ? 240 : 10, g: (i * 7) % 255, b: 30 } } }).png().toBuffer()
    parts.push({ name: 'file', filename: `${i}.png`, type: 'image/png', data: image }, { name: 'label', data: i % 2 === 0 ? 'light' : 'dark' })
  }
  parts.push({ name: 'method', data: 'centroid' })
  const form = multipart(parts)
  const created = await rawRequest(server.url, { method: 'POST', path: '/v1/classifiers', headers: [['Content-Type', form.type], ['Content-Length', String(form.body.length)]], body: [form.body], timeoutMs: 60_000 })
  const body = jsonOf(created)
  assert.equal(created.status, 201, JSON.stringify(body))
  assert.equal(body.num_examples, 100)
  // a text field over the limit (a base64 image of maxImageBytes, plus slack): 413 REQUEST_FIELD_TOO_LARGE naming it
  const longField = multipart([{ name: 'file', filename: 'a.png', type: 'image/png', data: tiny }, { name: 'pooling', data: 'm'.repeat(200_000) }])
  const refused = await rawRequest(server.url, { method: 'POST', path: '/v1/embeddings', headers: [['Content-Type', longField.type], ['Content-Length', String(longField.body.length)]], body: [longField.body] })
  assert.match(problemOf(refused, 413, 'REQUEST_FIELD_TOO_LARGE').detail, /pooling/)
})

test('defect 6: unknown options are 400 REQUEST_OPTION_UNKNOWN naming them, in JSON, query strings and multipart alike', async () => {
  const input = `data:image/png;base64,${PNG.toString('base64')}`
  const json = await expectProblem(await postJson(`${server.url}/v1/embeddings`, { input, poolng: 'cls', extra: 1 }), 400, 'REQUEST_OPTION_UNKNOWN')
  assert.match(json.detail, /"poolng"/)
  assert.match(json.detail, /"extra"/)
  const query = await expectProblem(await fetch(`${server.url}/v1/embeddings?poolng=cls`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: PNG }), 400, 'REQUEST_OPTION_UNKNOWN')
  assert.match(query.detail, /poolng/)
  const form = new FormData()
  form.append('f', new Blob([PNG], { type: 'image/png' }), 'a.png')
  form.append('poolng', 'cls')
  assert.match((await expectProblem(await fetch(`${server.url}/v1/embeddings`, { method: 'POST', body: form }), 400, 'REQUEST_OPTION_UNKNOWN')).detail, /poolng/)
  await expectProblem(await fetch(`${server.url}/v1/classifiers?limt=5`), 400, 'REQUEST_OPTION_UNKNOWN')
  // routes without query options refuse any query parameter
  assert.match((await expectProblem(await fetch(`${server.url}/v1/models?verbose=1`), 400, 'REQUEST_OPTION_UNKNOWN')).detail, /verbose/)
  // nested unknown fields of a JSON example are named too
  await expectProblem(await postJson(`${server.url}/v1/classifiers`, { examples: [{ label: 'a', imput: input }] }), 400, 'REQUEST_OPTION_UNKNOWN')
  // the known spelling works
  assert.equal((await postJson(`${server.url}/v1/embeddings`, { input, pooling: 'cls' })).status, 200)
  // a query option given with a JSON body applies (it is not replaced by the body's default)
  const viaQuery = await (await postJson(`${server.url}/v1/embeddings?pooling=cls`, { input })).json() as any
  const viaBody = await (await postJson(`${server.url}/v1/embeddings`, { input, pooling: 'cls' })).json() as any
  const mean = await (await postJson(`${server.url}/v1/embeddings`, { input })).json() as any
  assert.deepEqual(viaQuery.data[0].embedding, viaBody.data[0].embedding)
  assert.notDeepEqual(viaQuery.data[0].embedding, mean.data[0].embedding)
})

test('review: query options apply to JSON prediction bodies too; nested objects of an import refuse unknown fields', async () => {
  const examples = [0, 1, 2].flatMap((k) => [0, 1].map((j) => ({ label: `c${k}`, embedding: Array.from({ length: 192 }, (_, d) => (d % 3 === k ? 1 : 0) + 0.01 * j) })))
  const created = await (await postJson(`${server.url}/v1/classifiers`, { examples })).json() as any
  const predicted = await (await postJson(`${server.url}/v1/classifiers/${created.id}/predict?top_k=1`, { embeddings: [examples[0].embedding] })).json() as any
  assert.equal(predicted.data[0].top_k.length, 1, 'top_k from the query string was applied')
  const exported = await (await fetch(`${server.url}/v1/classifiers/${created.id}/export`)).json() as any
  exported.cross_validation.extra = 1
  await expectProblem(await postJson(`${server.url}/v1/classifiers/import`, exported), 400, 'REQUEST_OPTION_UNKNOWN')
})

test('defect 7: a multi-image request with bad images names each one: errors [{index, code, detail}]', async () => {
  const good = `data:image/png;base64,${PNG.toString('base64')}`
  const notImage = `data:image/png;base64,${Buffer.from('definitely not an image').toString('base64')}`
  // strings are checked before anything is decoded: the base64 error of input[3] alone
  const response = await postJson(`${server.url}/v1/embeddings`, { input: [good, notImage, good, 'not base64 !!'] })
  const body = await expectProblem(response, 400, 'IMAGE_BASE64_INVALID') as any
  assert.deepEqual(body.errors.map((e: any) => [e.index, e.code]), [[3, 'IMAGE_BASE64_INVALID']])
  // then every image is decoded, and each one that fails is named
  const decodeOnly = await expectProblem(await postJson(`${server.url}/v1/embeddings`, { input: [good, notImage, good, notImage] }), 422, 'IMAGE_UNREADABLE') as any
  assert.deepEqual(decodeOnly.errors.map((e: any) => e.index), [1, 3])
  const form = new FormData()
  form.append('a', new Blob([PNG], { type: 'image/png' }), 'a.png')
  form.append('b', new Blob([Buffer.from('nope')], { type: 'image/png' }), 'b.png')
  const multi = await expectProblem(await fetch(`${server.url}/v1/embeddings`, { method: 'POST', body: form }), 422, 'IMAGE_UNREADABLE') as any
  assert.deepEqual(multi.errors.map((e: any) => e.index), [1])
})

test('defect 7 (classifier examples): per-item indexes are positions among the examples, embeddings and images mixed', async () => {
  const good = `data:image/png;base64,${PNG.toString('base64')}`
  const emb = (k: number): number[] => Array.from({ length: 192 }, (_, d) => Math.sin(d + k))
  const badLength = await expectProblem(await postJson(`${server.url}/v1/classifiers`, { examples: [{ label: 'a', embedding: emb(0) }, { label: 'b', input: good }, { label: 'a', embedding: emb(1) }, { label: 'b', embedding: emb(2).slice(1) }] }), 422, 'CLASSIFIER_EMBEDDING_INVALID') as any
  assert.deepEqual(badLength.errors.map((e: any) => e.index), [3])
  const notImage = `data:image/png;base64,${Buffer.from('nope').toString('base64')}`
  const badImage = await expectProblem(await postJson(`${server.url}/v1/classifiers`, { examples: [{ label: 'a', embedding: emb(0) }, { label: 'a', embedding: emb(1) }, { label: 'b', input: good }, { label: 'b', input: notImage }] }), 422, 'IMAGE_UNREADABLE') as any
  assert.deepEqual(badImage.errors.map((e: any) => e.index), [3])
  assert.match(badImage.errors[0].detail, /^examples\[3\]|not a readable image/)
})

test('defect 8: Accept is negotiated with q-values (image/png;q=0 gets JSON)', async () => {
  const input = `data:image/jpeg;base64,${JPEG.toString('base64')}`
  const url = `${server.url}/v1/reconstructions`
  const body = JSON.stringify({ input, masking: 'random', seed: 1 })
  const type = async (accept: string): Promise<string> => (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept }, body })).headers.get('content-type')?.split(';')[0] ?? ''
  assert.equal(await type('image/png;q=0, application/json'), 'application/json')
  assert.equal(await type('application/json;q=0.5, image/png'), 'image/png')
  assert.equal(await type('image/png'), 'image/png')
  assert.equal(await type('*/*'), 'application/json')
})

test('defect 9: the official openai client reads our errors (status, code, message)', async () => {
  const client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 })
  await assert.rejects(
    client.embeddings.create({ model: 'no-such-model', input: `data:image/png;base64,${PNG.toString('base64')}` }),
    (err: any) => {
      assert.equal(err.status, 404)
      assert.equal(err.code, 'MODEL_NOT_FOUND')
      assert.match(err.message, /no-such-model/)
      assert.equal(err.type, 'invalid_request_error')
      return true
    })
  // hooks' errors too: a 404 of the router and a 401 of the key check
  const notFound = await (await fetch(`${server.url}/v1/nothing-here`)).json() as any
  assert.equal(notFound.error.code, 'REQUEST_NOT_FOUND')
  assert.equal(notFound.code, 'REQUEST_NOT_FOUND')
})

test('defect 10: refused requests while draining keep the in-flight gauge at 0 and record their own latency', async (t) => {
  const own = await startServer(t)
  own.app.lifecycle.draining = true
  for (let i = 0; i < 5; i++) await expectProblem(await fetch(`${own.url}/v1/models`), 503, 'SERVICE_UNAVAILABLE')
  const metrics = await (await fetch(`${own.url}/metrics`)).text()
  const inflight = /^clmae_inflight_requests(?:\{[^}]*\})? (\S+)$/m.exec(metrics)
  assert.ok(inflight !== null, 'in-flight gauge exported')
  assert.equal(Number(inflight[1]), 1, 'only the /metrics request itself is in flight')
  // every refused request took well under a second (main recorded the process uptime as their latency)
  const le1 = new RegExp(String.raw`^clmae_request_duration_seconds_bucket\{le="1",route="/v1/models",method="GET",status="503"\} (\d+)$`, 'm').exec(metrics)
  assert.ok(le1 !== null, metrics.split('\n').filter((l) => l.includes('duration')).slice(0, 5).join('\n'))
  assert.equal(Number(le1[1]), 5)
})

test('defect 11: the OpenAPI document marks every /v1 operation with its security requirement', async () => {
  const doc = await (await fetch(`${server.url}/openapi.json`)).json() as any
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    if (!path.startsWith('/v1')) continue
    for (const [method, op] of Object.entries(ops)) assert.deepEqual(op.security, [{ bearer: [] }, { apiKey: [] }], `${method} ${path}`)
  }
})

test('defect 12: a body that does not arrive within the request deadline is 408 REQUEST_TIMEOUT, and the connection closes', async (t) => {
  const own = await startServer(t, { requestDeadlineMs: 1500 })
  const { body, type } = multipart([{ name: 'image', filename: 'a.png', type: 'image/png', data: PNG }])
  const started = Date.now()
  const response = await rawRequest(own.url, {
    method: 'POST', path: '/v1/embeddings', headers: [['Content-Type', type], ['Content-Length', String(body.length)]],
    body: [body.subarray(0, 10), body.subarray(10, 20), body.subarray(20, 30), body.subarray(30, 40), body.subarray(40, 50)],
    chunkDelayMs: 600,
    timeoutMs: 10_000
  })
  problemOf(response, 408, 'REQUEST_TIMEOUT')
  assert.ok(Date.now() - started < 6000, 'answered at the deadline, not after the whole trickle')
  assert.equal(response.headers.connection, 'close')
  // a JSON body trickled the same way
  const json = await rawRequest(own.url, { method: 'POST', path: '/v1/embeddings', headers: [['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']], body: chunked(['{"in', 'put"', ':"', 'abc', '"}']), chunkDelayMs: 500 })
  problemOf(json, 408, 'REQUEST_TIMEOUT')
})

test('every answer of these attacks was a registered code (no INTERNAL_ERROR)', async () => {
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  const reasons = [...metrics.matchAll(/^clmae_rejections_total\{reason="([A-Z_0-9]+)"\} (\d+)/gm)].map((m) => m[1])
  assert.ok(reasons.length > 5)
  for (const r of reasons) assert.ok(isErrorCode(r), r)
  assert.ok(!reasons.includes('INTERNAL_ERROR'), 'an attack produced INTERNAL_ERROR')
})

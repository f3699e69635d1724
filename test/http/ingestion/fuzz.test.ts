/**
 * A fuzz test of the request path over a real socket (fast-check): routes, content types in any
 * casing, JSON bodies with known and unknown options, multipart framings (closed, truncated, wrong
 * boundary, odd part headers, fields named __proto__), raw bytes and real tiny images, sent with a
 * Content-Length or chunked, with and without a valid key. Every answer must be either a success or
 * application/problem+json with a registered code other than INTERNAL_ERROR (and OpenAI's error member
 * carrying the same code); the process must be alive afterwards.
 *
 * The seed is printed; rerun one with FUZZ_SEED=<seed> (and FUZZ_RUNS=<n> for more cases).
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import sharp from 'sharp'
import fc from 'fast-check'
import { isErrorCode } from '../../../src/errors.js'
import { startServer, type TestServer } from '../../helpers/server.js'
import { chunked, rawRequest } from '../../helpers/raw-http.js'

const KEY = 'fuzz-test-key-000001'
const RUNS = Number(process.env.FUZZ_RUNS ?? 2000)
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))

let server: TestServer
let classifierId = 'clf_0000000000000000'
let tinyPng: Buffer
let tinyJpeg: Buffer

before(async () => {
  server = await startServer(undefined, {
    apiKeys: [KEY], bodyLimitBytes: 64 * 1024, maxImageBytes: 24 * 1024, maxImagesPerRequest: 4, maxQueue: 64,
    classifierBodyLimitBytes: 96 * 1024, classifierMaxExamplesPerRequest: 6, classifierMaxClasses: 4, requestDeadlineMs: 10_000
  })
  tinyPng = await sharp({ create: { width: 20, height: 18, channels: 3, background: { r: 200, g: 40, b: 90 } } }).png().toBuffer()
  tinyJpeg = await sharp({ create: { width: 24, height: 30, channels: 3, background: { r: 20, g: 140, b: 90 } } }).jpeg().toBuffer()
  const examples = [0, 1, 2, 3].map((i) => ({ label: i % 2 === 0 ? 'a' : 'b', embedding: Array.from({ length: 192 }, (_, d) => Math.cos(d * (i + 1))) }))
  const created = await fetch(`${server.url}/v1/classifiers`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body: JSON.stringify({ examples }) })
  assert.equal(created.status, 201)
  classifierId = ((await created.json()) as { id: string }).id
})
after(async () => { await server.app.close() })

const OPTION_NAMES = ['model', 'pooling', 'normalize', 'encoding_format', 'include_patch_tokens', 'dimensions', 'mask_ratio', 'heatmap', 'masking', 'seed',
  'masked_patches', 'method', 'keep_images', 'knn_k', 'top_k', 'threshold', 'name', 'label', 'input', 'examples', 'embeddings', 'user',
  '__proto__', 'constructor', 'toString', 'poolng', '', 'a'.repeat(300)]

const imageBytes = fc.oneof(
  fc.constant('png'), fc.constant('jpeg'), fc.constant('truncated-png'), fc.constant('garbage'), fc.constant('empty'), fc.constant('huge')
).map((kind) => () => {
  if (kind === 'png') return tinyPng
  if (kind === 'jpeg') return tinyJpeg
  if (kind === 'truncated-png') return tinyPng.subarray(0, tinyPng.length - 20)
  if (kind === 'garbage') return Buffer.from('not an image at all')
  if (kind === 'huge') return Buffer.alloc(30 * 1024, 0xff)
  return Buffer.alloc(0)
})

const optionValue = fc.oneof(fc.string({ maxLength: 12 }), fc.integer({ min: -5, max: 300 }), fc.double({ noNaN: false }), fc.boolean(), fc.constant(null),
  fc.array(fc.integer({ min: -2, max: 70 }), { maxLength: 5 }), fc.constantFrom('mean', 'cls', 'base64', 'float', 'learned', 'random', 'given', 'logreg', 'knn', 'centroid', 'clmae-vit-mini-p8-64'))

const jsonBody = fc.record({
  input: fc.option(fc.oneof(
    imageBytes.map((b) => (): unknown => `data:image/png;base64,${b().toString('base64')}`),
    fc.array(imageBytes, { maxLength: 6 }).map((list) => (): unknown => list.map((b) => b().toString('base64'))),
    fc.string({ maxLength: 20 }).map((s) => (): unknown => s),
    fc.constant((): unknown => 123)
  ), { nil: undefined }),
  examples: fc.option(fc.array(fc.record({
    label: fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('__proto__', 'toString', '\u0000', '\ud800', '😀', 'x'.repeat(70))),
    embedding: fc.option(fc.array(fc.double(), { maxLength: 3 }), { nil: undefined }),
    input: fc.option(imageBytes.map((b) => b().toString('base64')), { nil: undefined })
  }), { maxLength: 8 }), { nil: undefined }),
  options: fc.dictionary(fc.constantFrom(...OPTION_NAMES), optionValue, { maxKeys: 4 })
}).map(({ input, examples, options }) => {
  const body: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(options)) Object.defineProperty(body, k, { value: v, enumerable: true, writable: true, configurable: true })
  if (input !== undefined) body.input = input()
  if (examples !== undefined) body.examples = examples
  return Buffer.from(JSON.stringify(body))
})

const multipartBody = fc.record({
  boundary: fc.constantFrom('b0undary', 'X-Y-Z', '----WebKitFormBoundary7MA4YWxkTrZu0gW'),
  declaredBoundary: fc.option(fc.constantFrom('other', ''), { nil: undefined }),
  parts: fc.array(fc.oneof(
    fc.record({ file: fc.constant(true), name: fc.constantFrom('file', 'image', 'input', '__proto__'), filename: fc.option(fc.constantFrom('a.png', '', '../../etc/passwd'), { nil: undefined }), type: fc.constantFrom('image/png', 'IMAGE/JPEG', 'application/octet-stream', 'text/plain'), bytes: imageBytes }),
    fc.record({ file: fc.constant(false), name: fc.constantFrom(...OPTION_NAMES), value: fc.oneof(fc.string({ maxLength: 16 }), fc.constantFrom('0.5', '12', 'true', 'cls', 'mean', 'learned', 'given')) })
  ), { maxLength: 10 }),
  closing: fc.constantFrom('closed', 'closed', 'missing', 'cut')
}).map(({ boundary, declaredBoundary, parts, closing }) => {
  const chunks: Buffer[] = []
  for (const p of parts) {
    if (p.file) {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}\r\nContent-Type: ${p.type}\r\n\r\n`), p.bytes(), Buffer.from('\r\n'))
    } else {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"\r\n\r\n${p.value}\r\n`))
    }
  }
  if (closing === 'closed') chunks.push(Buffer.from(`--${boundary}--\r\n`))
  let body = Buffer.concat(chunks)
  if (closing === 'cut') body = body.subarray(0, Math.floor(body.length / 2))
  return { body, type: `multipart/form-data; boundary=${declaredBoundary ?? boundary}` }
})

const request = fc.record({
  route: fc.constantFrom('POST /v1/embeddings', 'POST /v1/mask-maps', 'POST /v1/reconstructions', 'POST /v1/classifiers', 'POST /v1/classifiers/import',
    'POST /v1/classifiers/{id}/predict', 'POST /v1/classifiers/{id}/examples', 'POST /v1/classifiers/{id}/reembed', 'GET /v1/classifiers', 'GET /v1/models',
    'GET /v1/classifiers/{id}/export', 'DELETE /v1/classifiers/clf_nope', 'POST /v1/embeddings?pooling=cls', 'POST /v1/embeddings?poolng=1', 'POST /v1/reconstructions?mask_ratio=2'),
  body: fc.oneof(
    jsonBody.map((b) => ({ body: b, type: 'application/json' })),
    multipartBody,
    imageBytes.map((b) => ({ body: b(), type: 'image/png' })),
    fc.uint8Array({ maxLength: 2048 }).map((b) => ({ body: Buffer.from(b), type: 'application/octet-stream' })),
    fc.constant({ body: Buffer.alloc(0), type: 'application/json' })
  ),
  typeSpelling: fc.constantFrom('as-is', 'upper', 'mixed', 'charset', 'none', 'garbage', 'text'),
  chunkSizes: fc.option(fc.array(fc.integer({ min: 1, max: 4096 }), { minLength: 1, maxLength: 4 }), { nil: undefined }),
  auth: fc.constantFrom('bearer', 'bearer', 'x-api-key', 'X-API-KEY', 'x-api-key', 'none', 'wrong'),
  accept: fc.constantFrom(undefined, 'image/png', 'image/png;q=0, application/json', '*/*', 'text/html', ';;;'),
  encoding: fc.constantFrom(undefined, undefined, undefined, 'gzip', 'identity')
})

function spell (type: string, how: string): string | undefined {
  if (how === 'upper') return type.replace(/^[^;]+/, (m) => m.toUpperCase())
  if (how === 'mixed') return type.replace(/^[^;]+/, (m) => [...m].map((c, i) => i % 2 === 0 ? c.toUpperCase() : c).join(''))
  if (how === 'charset') return `${type}; charset=utf-8`
  if (how === 'none') return undefined
  if (how === 'garbage') return 'nonsense'
  if (how === 'text') return 'text/plain'
  return type
}

test(`fuzz: ${RUNS} requests over a real socket never answer INTERNAL_ERROR (FUZZ_SEED=${SEED})`, async (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}`)
  console.log(`fuzz seed: FUZZ_SEED=${SEED}`)
  const statuses = new Map<number, number>()
  let failure = ''
  const run = fc.assert(fc.asyncProperty(request, async (r) => {
    const [method, template] = r.route.split(' ')
    const path = template.replace('{id}', classifierId)
    const headers: Array<[string, string]> = []
    const contentType = spell(r.body.type, r.typeSpelling)
    const hasBody = method === 'POST'
    if (hasBody && contentType !== undefined) headers.push(['Content-Type', contentType])
    if (r.auth === 'bearer') headers.push(['Authorization', `Bearer ${KEY}`])
    if (r.auth === 'x-api-key') headers.push(['x-api-key', KEY])
    if (r.auth === 'X-API-KEY') headers.push(['X-API-KEY', KEY])
    if (r.auth === 'wrong') headers.push(['Authorization', 'Bearer wrong-wrong-wrong'])
    if (r.accept !== undefined) headers.push(['Accept', r.accept])
    if (r.encoding !== undefined) headers.push(['Content-Encoding', r.encoding])
    let body: Buffer[] = []
    if (hasBody) {
      if (r.chunkSizes !== undefined) {
        const pieces: Buffer[] = []
        let at = 0
        for (let i = 0; at < r.body.body.length; i++) {
          const size = r.chunkSizes[i % r.chunkSizes.length]
          pieces.push(r.body.body.subarray(at, at + size))
          at += size
        }
        headers.push(['Transfer-Encoding', 'chunked'])
        body = chunked(pieces)
      } else {
        headers.push(['Content-Length', String(r.body.body.length)])
        body = [r.body.body]
      }
    }
    const response = await rawRequest(server.url, { method, path, headers, body, timeoutMs: 20_000 })
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
    // the counterexample fast-check prints would be megabytes of body bytes: keep a readable summary
    failure = `${method} ${path} headers=${JSON.stringify(headers)} body (${r.body.body.length} bytes) starts ${JSON.stringify(r.body.body.subarray(0, 400).toString('latin1'))} -> ${response.status} ${response.body.toString('utf8').slice(0, 400)}`
    assert.ok(response.status >= 200, `no answer (closed early) for ${r.route}`)
    assert.notEqual(response.status, 500, response.body.toString('utf8').slice(0, 300))
    if (response.status >= 400) {
      assert.equal(response.headers['content-type']?.split(';')[0], 'application/problem+json', `${response.status} ${r.route}`)
      const problem = JSON.parse(response.body.toString('utf8')) as { code: string, status: number, error: { code: string, message: string } }
      assert.ok(isErrorCode(problem.code), `unregistered code ${problem.code}`)
      assert.notEqual(problem.code, 'INTERNAL_ERROR')
      assert.equal(problem.status, response.status)
      assert.equal(problem.error.code, problem.code)
    }
  }), { numRuns: RUNS, seed: SEED, endOnFailure: true })
  await run.catch((error: unknown) => {
    assert.fail(`FUZZ_SEED=${SEED}: ${(error as Error).message.split('\n').find((l) => l.startsWith('Property failed')) ?? ''}\n${failure}\n${String((error as { cause?: unknown }).cause ?? '')}`)
  })
  t.diagnostic(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`)
  const successes = [...statuses].filter(([s]) => s < 300).reduce((a, [, n]) => a + n, 0)
  assert.ok(successes > RUNS / 50, `only ${successes} successes: the fuzzer no longer reaches the handlers`)
  assert.equal((await fetch(`${server.url}/livez`)).status, 200)
})

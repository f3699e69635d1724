/**
 * What the outside review of the ingestion layer found, each attacked on a raw socket:
 * - a request refused before its body is read (401, 404) closes its connection at once instead of
 *   letting the client trickle a body for minutes; an unknown route reads no body at all;
 * - what Node's HTTP parser refuses (Content-Length with Transfer-Encoding, broken chunk framing,
 *   oversized headers) is answered with problem+json too;
 * - compressed bodies are 415;
 * - the in-flight gauge returns to its baseline after clients abort mid-body, mid-inference or half-close.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { startServer, type TestServer } from '../../helpers/server.js'
import { chunked, jsonOf, rawRequest, type RawResponse } from '../../helpers/raw-http.js'

const KEY = 'connections-test-key-01'
const PNG = readFileSync(new URL('../../fixtures/images/gradient.png', import.meta.url))

let server: TestServer
before(async () => { server = await startServer(undefined, { apiKeys: [KEY] }) })
after(async () => { await server.app.close() })

function problem (response: RawResponse, status: number, code: string): void {
  assert.equal(response.status, status, response.body.toString('utf8').slice(0, 300))
  assert.equal(response.headers['content-type']?.split(';')[0], 'application/problem+json')
  const body = jsonOf(response)
  assert.equal(body.code, code)
  assert.equal(body.error.code, code)
}

async function inflight (): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  return Number(/^clmae_inflight_requests (\S+)$/m.exec(text)?.[1])
}

test('a 401 before the body: answered, and the connection closed although the client keeps trickling', async () => {
  const started = Date.now()
  const response = await rawRequest(server.url, {
    method: 'POST', path: '/v1/embeddings', headers: [['Content-Type', 'image/png'], ['Content-Length', '100000']],
    body: Array.from({ length: 20 }, () => 'x'), chunkDelayMs: 500, timeoutMs: 15_000
  })
  problem(response, 401, 'AUTH_KEY_MISSING')
  assert.equal(response.headers.connection, 'close')
  assert.ok(Date.now() - started < 5000, `the server held the connection for ${Date.now() - started} ms`)
})

test('an unknown route reads no body: a huge declared body gets 404 at once', async () => {
  const started = Date.now()
  const response = await rawRequest(server.url, {
    method: 'POST', path: '/no-such-route', headers: [['Content-Type', 'application/json'], ['Content-Length', String(15 * 1024 * 1024)]],
    body: ['{"a":'], timeoutMs: 10_000
  })
  problem(response, 404, 'REQUEST_NOT_FOUND')
  assert.ok(Date.now() - started < 3000)
})

test('what Node\'s HTTP parser refuses is problem+json as well', async () => {
  const both = await rawRequest(server.url, { method: 'POST', path: '/v1/embeddings', headers: [['Content-Type', 'image/png'], ['Content-Length', '5'], ['Transfer-Encoding', 'chunked'], ['X-API-Key', KEY]], body: chunked(['hello']) })
  problem(both, 400, 'REQUEST_BODY_INVALID')
  const badChunk = await rawRequest(server.url, { method: 'POST', path: '/v1/embeddings', headers: [['Content-Type', 'image/png'], ['Transfer-Encoding', 'chunked'], ['X-API-Key', KEY]], body: ['zz\r\nhello\r\n0\r\n\r\n'] })
  problem(badChunk, 400, 'REQUEST_BODY_INVALID')
  const hugeHeaders = await rawRequest(server.url, { method: 'GET', path: '/livez', headers: [['X-Padding', 'p'.repeat(20_000)]] })
  problem(hugeHeaders, 431, 'REQUEST_HEADERS_TOO_LARGE')
  const doubleLength = await rawRequest(server.url, { method: 'POST', path: '/v1/embeddings', headers: [['Content-Type', 'image/png'], ['Content-Length', '5'], ['Content-Length', '6'], ['X-API-Key', KEY]], body: ['hello!'] })
  problem(doubleLength, 400, 'REQUEST_BODY_INVALID')
  assert.equal((await fetch(`${server.url}/livez`)).status, 200)
})

test('a compressed body is 415, before it is read', async () => {
  const response = await rawRequest(server.url, { method: 'POST', path: '/v1/embeddings', headers: [['Content-Type', 'image/png'], ['Content-Encoding', 'gzip'], ['Content-Length', String(PNG.length)], ['X-API-Key', KEY]], body: [PNG] })
  problem(response, 415, 'REQUEST_MEDIA_TYPE_UNSUPPORTED')
  const identity = await rawRequest(server.url, { method: 'POST', path: '/v1/embeddings', headers: [['Content-Type', 'image/png'], ['Content-Encoding', 'identity'], ['Content-Length', String(PNG.length)], ['X-API-Key', KEY]], body: [PNG] })
  assert.equal(identity.status, 200)
})

test('the in-flight gauge comes back to its baseline after aborted requests', async () => {
  const baseline = await inflight()
  const jobs: Array<Promise<unknown>> = []
  for (let i = 0; i < 5; i++) {
    // mid-body: declared 1000 bytes, 10 sent, then the connection is dropped
    jobs.push(rawRequest(server.url, { method: 'POST', path: '/v1/embeddings', headers: [['Content-Type', 'image/png'], ['Content-Length', '1000'], ['X-API-Key', KEY]], body: ['0123456789'], timeoutMs: 300 }))
    // half-close after a partial body
    jobs.push(rawRequest(server.url, { method: 'POST', path: '/v1/embeddings', headers: [['Content-Type', 'image/png'], ['Content-Length', '1000'], ['X-API-Key', KEY]], body: ['0123456789'], halfClose: true, timeoutMs: 2000 }))
    // unauthenticated, to an unknown route, dropped
    jobs.push(rawRequest(server.url, { method: 'POST', path: '/nope', headers: [['Content-Type', 'image/png'], ['Content-Length', '1000']], body: ['0123'], timeoutMs: 300 }))
    // a whole request whose client leaves before the answer
    jobs.push(rawRequest(server.url, { method: 'POST', path: '/v1/embeddings', headers: [['Content-Type', 'image/png'], ['Content-Length', String(PNG.length)], ['X-API-Key', KEY]], body: [PNG], timeoutMs: 1 }))
  }
  await Promise.all(jobs)
  let now = await inflight()
  for (let i = 0; i < 50 && now !== baseline; i++) { await new Promise((resolve) => setTimeout(resolve, 100)); now = await inflight() }
  assert.equal(now, baseline, 'every aborted request left the gauge')
})

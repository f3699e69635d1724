/**
 * Auth follows the matched route, not the URL string. Every operation of openapi/openapi.json (and
 * Fastify's automatic HEAD route of each GET) is requested under every spelling the router accepts
 * (percent-encoded letters and digits in either hex case, double slashes, a trailing slash, dot
 * segments, other letter case), on a raw socket so that nothing normalises the path on the way:
 * - without a key, with a wrong key or a non-Bearer scheme: no spelling answers 2xx (main at f471e1f
 *   answered 200 to GET /%761/models);
 * - with a valid key (Authorization: Bearer or X-API-Key, header names in other casings): none answers 401.
 * The protected set is read from the document's security requirements, so a new route is covered the
 * day it is added; /metrics is added because the server runs with protectMetrics.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { startServer, type TestServer } from '../../helpers/server.js'
import { rawRequest, type RawRequest } from '../../helpers/raw-http.js'

const KEY = 'spelling-test-key-0001'
const openapi = JSON.parse(readFileSync(new URL('../../../openapi/openapi.json', import.meta.url), 'utf8')) as {
  paths: Record<string, Record<string, { security?: unknown[] }>>
}

interface Operation { method: string, path: string }

const operations: Operation[] = []
for (const [template, ops] of Object.entries(openapi.paths)) {
  for (const [method, op] of Object.entries(ops)) {
    if (op.security === undefined || op.security.length === 0) continue
    const path = template.replace(/\{[^}]+\}/g, 'clf_0123456789abcdef')
    operations.push({ method: method.toUpperCase(), path })
    if (method === 'get') operations.push({ method: 'HEAD', path })
  }
}
operations.push({ method: 'GET', path: '/metrics' }, { method: 'HEAD', path: '/metrics' })

/** Every spelling of `path` this test tries; most reach the same route, the rest must simply not be 2xx. */
export function spellings (path: string): string[] {
  const out = new Set<string>([path])
  const chars = [...path]
  chars.forEach((c, i) => {
    if (!/[A-Za-z0-9]/.test(c)) return
    const hex = c.charCodeAt(0).toString(16)
    for (const h of [hex.toLowerCase(), hex.toUpperCase()]) out.add(chars.slice(0, i).join('') + '%' + h + chars.slice(i + 1).join(''))
  })
  out.add(chars.map((c) => /[A-Za-z0-9]/.test(c) ? '%' + c.charCodeAt(0).toString(16).toUpperCase() : c).join(''))
  const segments = path.split('/') // ['', 'v1', 'models']
  for (let i = 1; i < segments.length; i++) {
    out.add([...segments.slice(0, i), '', ...segments.slice(i)].join('/')) // a double slash before segment i
    out.add([...segments.slice(0, i), '.', ...segments.slice(i)].join('/'))
    out.add([...segments.slice(0, i), 'x', '..', ...segments.slice(i)].join('/'))
    out.add([...segments.slice(0, i), '%2e', ...segments.slice(i)].join('/'))
  }
  out.add(path + '/')
  out.add(path + '//')
  out.add(path + '?')
  out.add(path + '?x=1#frag')
  out.add(path.toUpperCase())
  out.add(path.replace('/v1', '/V1'))
  out.add(path + '%2f')
  out.add(path + ';')
  return [...out]
}

let server: TestServer
before(async () => { server = await startServer(undefined, { apiKeys: [KEY], protectMetrics: true }) })
after(async () => { await server.app.close() })

async function send (method: string, path: string, headers: Array<[string, string]>): Promise<number> {
  const request: RawRequest = { method, path, headers, timeoutMs: 10_000 }
  if (method === 'POST') request.headers = [...headers, ['Content-Type', 'application/json'], ['Content-Length', '2']]
  if (method === 'POST') request.body = ['{}']
  return (await rawRequest(server.url, request)).status
}

test('the operations under test: every /v1 operation of the document, its HEAD routes and /metrics', () => {
  assert.ok(operations.length >= 18, `only ${operations.length} operations`)
  assert.ok(operations.some((o) => o.method === 'POST' && o.path === '/v1/embeddings'))
  assert.ok(operations.some((o) => o.method === 'HEAD' && o.path === '/v1/models'))
})

test('no spelling of a protected operation answers 2xx without a valid key', async () => {
  const failures: string[] = []
  let tried = 0
  const noKey: Array<Array<[string, string]>> = [[], [['Authorization', 'Bearer wrong-key-000000']], [['X-Api-Key', 'wrong-key-000000']], [['Authorization', `Basic ${KEY}`]], [['Authorization', KEY]]]
  for (const op of operations) {
    for (const path of spellings(op.path)) {
      for (const headers of noKey) {
        const status = await send(op.method, path, headers)
        tried++
        if (status >= 200 && status < 300) failures.push(`${op.method} ${path} ${JSON.stringify(headers)} -> ${status}`)
        if (status >= 500) failures.push(`${op.method} ${path} -> ${status}`)
      }
    }
  }
  assert.ok(tried > 1500, `only ${tried} requests`)
  assert.deepEqual(failures, [])
})

test('with a valid key, in either header and any header-name casing, no spelling answers 401', async () => {
  const failures: string[] = []
  const withKey: Array<Array<[string, string]>> = [
    [['Authorization', `Bearer ${KEY}`]], [['authorization', `bearer ${KEY}`]], [['AUTHORIZATION', `BEARER  ${KEY} `]],
    [['X-API-Key', KEY]], [['x-api-key', KEY]], [['X-Api-KEY', ` ${KEY}`]]
  ]
  let reached = 0
  for (const op of operations) {
    for (const path of spellings(op.path)) {
      const headers = withKey[reached++ % withKey.length]
      const status = await send(op.method, path, headers)
      if (status === 401) failures.push(`${op.method} ${path} ${JSON.stringify(headers)} -> 401`)
      if (status >= 500) failures.push(`${op.method} ${path} -> ${status}`)
    }
  }
  assert.deepEqual(failures, [])
})

test('the spellings the router accepts do reach the protected route (so the first test attacks something)', async () => {
  // main at f471e1f answered 200 here without a key; now 401, and 200 with one
  for (const path of ['/%761/models', '/v%31/models', '/%76%31/%6d%6f%64%65%6c%73']) {
    assert.equal(await send('GET', path, []), 401, path)
    assert.equal(await send('GET', path, [['X-API-Key', KEY]]), 200, path)
  }
  assert.equal(await send('GET', '/%6detrics', []), 401)
  assert.equal(await send('GET', '/%6detrics', [['Authorization', `Bearer ${KEY}`]]), 200)
  assert.equal(await send('HEAD', '/v1/models', []), 401)
})

test('open routes stay open with keys on', async () => {
  for (const path of ['/livez', '/readyz', '/openapi.json', '/docs/', '/']) {
    assert.equal(await send('GET', path, []), 200, path)
  }
})

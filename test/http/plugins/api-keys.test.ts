/**
 * Optional API keys: every /v1 route needs Bearer or X-API-Key; health, metrics (by default), docs and
 * OpenAPI stay open; protectMetrics closes /metrics too.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { presentedKey } from '../../../src/http/plugins/api-keys.js'
import { startServer } from '../../helpers/server.js'

const KEYS = ['first-key-123456', 'second-key-654321']

test('presentedKey reads Bearer and X-API-Key', () => {
  assert.equal(presentedKey({ authorization: 'Bearer abc' }), 'abc')
  assert.equal(presentedKey({ authorization: 'bearer  abc ' }), 'abc')
  assert.equal(presentedKey({ 'x-api-key': 'xyz' }), 'xyz')
  assert.equal(presentedKey({ authorization: 'Basic abc' }), undefined)
  assert.equal(presentedKey({}), undefined)
})

test('with keys configured: /v1 needs a valid key, open routes stay open', async (t) => {
  const { url } = await startServer(t, { apiKeys: KEYS })
  const missing = await fetch(`${url}/v1/models`)
  assert.equal(missing.status, 401)
  assert.match(missing.headers.get('content-type') ?? '', /application\/problem\+json/)
  assert.equal(((await missing.json()) as { code: string }).code, 'AUTH_KEY_MISSING')
  const wrong = await fetch(`${url}/v1/models`, { headers: { authorization: 'Bearer not-a-key-000' } })
  assert.equal(wrong.status, 401)
  assert.equal(((await wrong.json()) as { code: string }).code, 'AUTH_KEY_INVALID')
  const wrongEmbeddings = await fetch(`${url}/v1/embeddings`, { method: 'POST', headers: { 'x-api-key': 'nope-nope-nope' } })
  assert.equal(wrongEmbeddings.status, 401, 'auth is checked before the body')
  assert.equal((await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${KEYS[0]}` } })).status, 200)
  assert.equal((await fetch(`${url}/v1/models`, { headers: { 'x-api-key': KEYS[1] } })).status, 200)
  for (const open of ['/livez', '/readyz', '/metrics', '/openapi.json', '/docs/']) {
    assert.equal((await fetch(`${url}${open}`)).status, 200, open)
  }
})

test('protectMetrics puts /metrics behind the keys too', async (t) => {
  const { url } = await startServer(t, { apiKeys: KEYS, protectMetrics: true })
  assert.equal((await fetch(`${url}/metrics`)).status, 401)
  assert.equal((await fetch(`${url}/metrics`, { headers: { 'x-api-key': KEYS[0] } })).status, 200)
  assert.equal((await fetch(`${url}/livez`)).status, 200)
})

test('without keys configured, /v1 is open', async (t) => {
  const { url } = await startServer(t)
  assert.equal((await fetch(`${url}/v1/models`)).status, 200)
})

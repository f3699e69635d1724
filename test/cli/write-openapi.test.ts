/**
 * openapi/openapi.json is generated from the route schemas: regenerating it in memory must give the
 * committed file exactly (run `npm run openapi` after changing a route or schema).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { OPENAPI_PATH, renderOpenApi } from '../../src/cli/write-openapi.js'

test('openapi/openapi.json is current (npm run openapi)', async () => {
  const fresh = JSON.parse(await renderOpenApi())
  const committed = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8'))
  assert.deepEqual(committed, fresh, 'openapi/openapi.json is stale: run npm run openapi')
})

test('the document describes the embeddings route with its three body forms and problem responses', async () => {
  const doc = JSON.parse(await renderOpenApi())
  const post = doc.paths['/v1/embeddings'].post
  assert.deepEqual(Object.keys(post.requestBody.content).slice(0, 2), ['application/json', 'multipart/form-data'])
  assert.ok('image/jpeg' in post.requestBody.content)
  assert.ok(post.responses['503'].description.includes('QUEUE_FULL'))
  assert.equal(post.responses['413'].content['application/problem+json'].schema.$ref, '#/components/schemas/Problem')
  assert.ok(doc.components.schemas.Problem.properties.code)
  for (const path of ['/v1/models', '/livez', '/readyz', '/metrics']) assert.ok(path in doc.paths, path)
})

/**
 * GET /v1/models against a real server with the shipped bundles.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BASELINE_MODEL, DEFAULT_MODEL, startServer } from '../../helpers/server.js'

test('lists the shipped bundles: default flag, method, manifest, verified sha256 per graph, provider, batching, quantization', async (t) => {
  const { url } = await startServer(t, { maxBatchSize: 3, maxWaitMs: 1.5, maxQueue: 40 })
  const response = await fetch(`${url}/v1/models`)
  assert.equal(response.status, 200)
  const body = await response.json() as any
  assert.equal(body.object, 'list')
  const ids = body.data.map((m: any) => m.id).sort()
  assert.deepEqual(ids, [DEFAULT_MODEL, BASELINE_MODEL, `${DEFAULT_MODEL}-int8`].sort()) // the int8 variant: README, int8 bundles
  const clmae = body.data.find((m: any) => m.id === DEFAULT_MODEL)
  const mae = body.data.find((m: any) => m.id === BASELINE_MODEL)
  assert.equal(clmae.default, true)
  assert.equal(mae.default, false)
  assert.equal(clmae.method, 'clmae')
  assert.equal(mae.method, 'mae')
  assert.deepEqual(Object.keys(clmae.sha256).sort(), ['decoder', 'encoder', 'keep_scores'])
  assert.deepEqual(Object.keys(mae.sha256).sort(), ['decoder', 'encoder'])
  assert.equal(clmae.sha256.encoder, clmae.manifest.graphs.encoder.sha256)
  assert.match(clmae.sha256.encoder, /^[0-9a-f]{64}$/)
  assert.equal(clmae.manifest.name, DEFAULT_MODEL)
  assert.equal(clmae.manifest.dims.embed_dim, 192)
  assert.equal(clmae.execution_provider, 'cpu')
  assert.deepEqual({ ...clmae.batching, queue_depth: undefined }, { max_batch_size: 3, max_wait_ms: 1.5, max_queue: 40, queue_depth: undefined })
  assert.deepEqual(clmae.batching.queue_depth, { encoder: 0, decoder: 0, keep_scores: 0 })
  assert.equal(clmae.quantization, null)
  assert.equal(body.data.find((m: any) => m.id === `${DEFAULT_MODEL}-int8`).quantization.source_encoder_sha256, clmae.sha256.encoder)
})

/**
 * /livez, /readyz (503 until warmed up, 503 while draining) and /metrics contents, on a real server.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { warmUpApp } from '../../../src/app.js'
import { IMAGES_DIR, postJson, startServer } from '../../helpers/server.js'

test('readyz is 503 before warm-up, 200 after, 503 while draining; livez is 200 throughout', async (t) => {
  const { app, url } = await startServer(t, {}, { warmUp: false })
  assert.equal((await fetch(`${url}/livez`)).status, 200)
  const before = await fetch(`${url}/readyz`)
  assert.equal(before.status, 503)
  assert.equal(((await before.json()) as { code: string }).code, 'SERVICE_UNAVAILABLE')
  assert.equal(before.headers.get('retry-after'), '1')
  await warmUpApp(app)
  const ready = await fetch(`${url}/readyz`)
  assert.equal(ready.status, 200)
  assert.deepEqual(await ready.json(), { status: 'ready', database: 'up' }) // warm-up also opened the classifier store
  app.lifecycle.draining = true
  assert.equal((await fetch(`${url}/readyz`)).status, 503)
  const refused = await fetch(`${url}/v1/models`)
  assert.equal(refused.status, 503, 'new work is refused while draining')
  assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/)
  assert.equal(((await refused.json()) as { code: string }).code, 'SERVICE_UNAVAILABLE')
  assert.equal((await fetch(`${url}/metrics`)).status, 200)
  assert.equal((await fetch(`${url}/livez`)).status, 200)
})

test('metrics: request duration by route and status, queue wait, inference time and batch size by graph, queue depth, rejections by reason, process defaults', async (t) => {
  const { url } = await startServer(t)
  const png = readFileSync(new URL('gradient.png', IMAGES_DIR))
  assert.equal((await postJson(`${url}/v1/embeddings`, { input: [png.toString('base64'), png.toString('base64')] })).status, 200)
  assert.equal((await postJson(`${url}/v1/embeddings`, { input: 'bad input !' })).status, 400)
  assert.equal((await postJson(`${url}/v1/embeddings`, { input: png.toString('base64'), model: 'nope' })).status, 404)
  const response = await fetch(`${url}/metrics`)
  assert.equal(response.status, 200)
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/)
  const text = await response.text()
  assert.match(text, /clmae_request_duration_seconds_count\{route="\/v1\/embeddings",method="POST",status="200"\} 1/)
  assert.match(text, /clmae_request_duration_seconds_count\{route="\/v1\/embeddings",method="POST",status="400"\} 1/)
  assert.match(text, /clmae_requests_total\{route="\/v1\/embeddings",method="POST",status="404"\} 1/)
  assert.match(text, /clmae_queue_wait_seconds_count\{model="clmae-vit-mini-p8-64",graph="encoder"\} 2/)
  assert.match(text, /clmae_inference_duration_seconds_count\{model="clmae-vit-mini-p8-64",graph="encoder"\} [12]/)
  assert.match(text, /clmae_batch_size_sum\{model="clmae-vit-mini-p8-64",graph="encoder"\} 2/)
  assert.match(text, /clmae_queue_depth\{model="clmae-vit-mini-p8-64",graph="encoder"\} 0/)
  assert.match(text, /clmae_rejections_total\{reason="IMAGE_BASE64_INVALID"\} 1/)
  assert.match(text, /clmae_rejections_total\{reason="MODEL_NOT_FOUND"\} 1/)
  assert.match(text, /clmae_preprocess_duration_seconds_count\{stage="decode"\} 2/)
  assert.match(text, /clmae_preprocess_duration_seconds_count\{stage="resize"\} 2/)
  assert.match(text, /clmae_image_pixels_count 2/)
  assert.match(text, /clmae_inflight_requests /)
  assert.match(text, /clmae_process_cpu_seconds_total /)
  assert.match(text, /clmae_nodejs_eventloop_lag_seconds /)
})

test('unknown routes are a 404 problem', async (t) => {
  const { url } = await startServer(t)
  const response = await fetch(`${url}/v2/nothing`)
  assert.equal(response.status, 404)
  assert.match(response.headers.get('content-type') ?? '', /application\/problem\+json/)
  assert.equal(((await response.json()) as { code: string }).code, 'REQUEST_NOT_FOUND')
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BASELINE_MODEL, DEFAULT_MODEL, postJson, startServer, type TestServer } from '../../helpers/server.js'
import { expectProblem as expectCoreProblem } from '../../helpers/problem.js'
import { colourImage as colourPng } from '../../helpers/colour-image.js'

/** The test image as a data URL (these tests also cut it apart for raw and multipart bodies). */
async function colourImage (rgb: [number, number, number], variant: number): Promise<string> {
  return `data:image/png;base64,${await colourPng(rgb, variant)}`
}

const RED: [number, number, number] = [220, 30, 30]
const BLUE: [number, number, number] = [30, 40, 220]

async function colourExamples (perLabel: number): Promise<{ label: string, input: string }[]> {
  const out: { label: string, input: string }[] = []
  for (let i = 0; i < perLabel; i++) {
    out.push({ label: 'red', input: await colourImage(RED, i) })
    out.push({ label: 'blue', input: await colourImage(BLUE, i) })
  }
  return out
}

async function expectProblem (response: Response, status: number, code: string): Promise<void> {
  const body = await expectCoreProblem(response, status, code)
  assert.equal(body.status, status)
}

async function encoderSha (server: TestServer, model: string): Promise<string> {
  const models = await (await fetch(`${server.url}/v1/models`)).json() as { data: { id: string, sha256: { encoder: string } }[] }
  return models.data.find((m) => m.id === model)?.sha256.encoder as string
}

function randomEmbedding (seed: number, dim = 192): number[] {
  return Array.from({ length: dim }, (_, j) => Math.sin(seed * 31 + j * 7) + (seed % 2 === 0 ? 1 : -1) * (j % 3 === 0 ? 1 : 0))
}

test('create from images, predict, add examples, list, get, delete', async (t) => {
  const server = await startServer(t)
  const created = await postJson(`${server.url}/v1/classifiers`, { name: 'colours', examples: await colourExamples(3) })
  const c = await created.json() as Record<string, any>
  assert.equal(created.status, 201, JSON.stringify(c))
  assert.match(c.id, /^clf_/)
  assert.equal(c.version, 1)
  assert.equal(c.method, 'logreg')
  assert.deepEqual(c.labels, [{ label: 'blue', count: 3 }, { label: 'red', count: 3 }])
  assert.equal(c.cross_validation.scheme, 'stratified-k-fold(k=3, seed=0)')
  assert.ok(c.cross_validation.accuracy >= 0 && c.cross_validation.accuracy <= 1)
  assert.equal(c.model, DEFAULT_MODEL)
  assert.equal(c.model_sha256, await encoderSha(server, DEFAULT_MODEL))
  assert.equal(c.pooling, 'mean')
  assert.equal(c.normalize, true)
  assert.equal(c.dim, 192)

  const predicted = await postJson(`${server.url}/v1/classifiers/${c.id}/predict`, { input: [await colourImage(RED, 7), await colourImage(BLUE, 7)], top_k: 2 })
  const p = await predicted.json() as Record<string, any>
  assert.equal(predicted.status, 200, JSON.stringify(p))
  assert.deepEqual(p.data.map((d: any) => d.label), ['red', 'blue'])
  assert.equal(p.data[0].top_k.length, 2)
  assert.ok(Math.abs(p.data[0].top_k[0].probability + p.data[0].top_k[1].probability - 1) < 1e-6)
  assert.equal(p.version, 1)

  const abstain = await (await postJson(`${server.url}/v1/classifiers/${c.id}/predict`, { input: await colourImage(RED, 2), threshold: 1 })).json() as Record<string, any>
  assert.equal(abstain.data[0].abstained || abstain.data[0].top_k[0].probability === 1, true)
  if (abstain.data[0].abstained) assert.equal(abstain.data[0].label, null)

  const raw = await fetch(`${server.url}/v1/classifiers/${c.id}/predict?top_k=1`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: Buffer.from((await colourImage(BLUE, 3)).split(',')[1], 'base64') })
  const rawBody = await raw.json() as Record<string, any>
  assert.equal(raw.status, 200, JSON.stringify(rawBody))
  assert.equal(rawBody.data[0].top_k.length, 1)

  const added = await postJson(`${server.url}/v1/classifiers/${c.id}/examples`, { examples: [{ label: 'green', input: await colourImage([30, 200, 40], 0) }, { label: 'green', input: await colourImage([30, 200, 40], 1) }] })
  const a = await added.json() as Record<string, any>
  assert.equal(added.status, 200, JSON.stringify(a))
  assert.equal(a.version, 2)
  assert.equal(a.num_examples, 8)
  assert.deepEqual(a.labels.map((l: any) => l.label), ['blue', 'green', 'red'])

  const second = await postJson(`${server.url}/v1/classifiers`, { method: 'knn', examples: [{ label: 'x', embedding: randomEmbedding(1) }, { label: 'y', embedding: randomEmbedding(2) }] })
  assert.equal(second.status, 201)
  const page1 = await (await fetch(`${server.url}/v1/classifiers?limit=1`)).json() as Record<string, any>
  assert.equal(page1.data.length, 1)
  assert.equal(page1.data[0].id, c.id)
  const page2 = await (await fetch(`${server.url}/v1/classifiers?limit=1&cursor=${page1.next_cursor}`)).json() as Record<string, any>
  assert.equal(page2.data.length, 1)
  assert.equal(page2.next_cursor, null)

  assert.equal((await fetch(`${server.url}/v1/classifiers/${c.id}`)).status, 200)
  assert.equal((await fetch(`${server.url}/v1/classifiers/${c.id}`, { method: 'DELETE' })).status, 204)
  await expectProblem(await fetch(`${server.url}/v1/classifiers/${c.id}`), 404, 'CLASSIFIER_NOT_FOUND')
  await expectProblem(await fetch(`${server.url}/v1/classifiers/${c.id}`, { method: 'DELETE' }), 404, 'CLASSIFIER_NOT_FOUND')
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  assert.match(metrics, /clmae_classifiers 1\b/)
  assert.match(metrics, /clmae_classifier_fit_seconds_count\{method="logreg"\} 2/)
})

test('concurrent example additions to one classifier are serialised: every example kept, versions 2 and 3', async (t) => {
  const server = await startServer(t)
  const examples = Array.from({ length: 8 }, (_, i) => ({ label: i % 2 === 0 ? 'even' : 'odd', embedding: randomEmbedding(i) }))
  const created = await postJson(`${server.url}/v1/classifiers`, { examples, model: DEFAULT_MODEL })
  const c = await created.json() as Record<string, any>
  assert.equal(created.status, 201, JSON.stringify(c))
  const batch = (from: number) => Array.from({ length: 6 }, (_, i) => ({ label: (from + i) % 2 === 0 ? 'even' : 'odd', embedding: randomEmbedding(from + i) }))
  const answers = await Promise.all([100, 200, 300].map(async (from) => await postJson(`${server.url}/v1/classifiers/${c.id}/examples`, { examples: batch(from) })))
  const bodies = await Promise.all(answers.map(async (r) => await r.json() as Record<string, any>))
  assert.deepEqual(answers.map((r) => r.status), [200, 200, 200], JSON.stringify(bodies))
  assert.deepEqual(bodies.map((b) => b.version).sort(), [2, 3, 4])
  const final = await (await fetch(`${server.url}/v1/classifiers/${c.id}`)).json() as Record<string, any>
  assert.equal(final.version, 4)
  assert.equal(final.num_examples, 8 + 3 * 6)
})

test('multipart: one label field per file; a missing label is CLASSIFIER_LABEL_MISSING', async (t) => {
  const server = await startServer(t)
  const form = new FormData()
  const examples = await colourExamples(2)
  for (const e of examples) {
    form.append('label', e.label)
    form.append('file', new Blob([Buffer.from(e.input.split(',')[1], 'base64')], { type: 'image/png' }), `${e.label}.png`)
  }
  form.append('method', 'centroid')
  form.append('keep_images', 'true')
  const created = await fetch(`${server.url}/v1/classifiers`, { method: 'POST', body: form })
  const c = await created.json() as Record<string, any>
  assert.equal(created.status, 201, JSON.stringify(c))
  assert.equal(c.method, 'centroid')
  assert.equal(c.keep_images, true)
  assert.equal(c.num_examples, 4)

  const bad = new FormData()
  bad.append('label', 'red')
  bad.append('file', new Blob([Buffer.from(examples[0].input.split(',')[1], 'base64')], { type: 'image/png' }), 'a.png')
  bad.append('file', new Blob([Buffer.from(examples[1].input.split(',')[1], 'base64')], { type: 'image/png' }), 'b.png')
  await expectProblem(await fetch(`${server.url}/v1/classifiers`, { method: 'POST', body: bad }), 400, 'CLASSIFIER_LABEL_MISSING')
})

test('pinning: another encoder sha256 is 409 CLASSIFIER_MODEL_MISMATCH until the classifier is re-embedded', async (t) => {
  const server = await startServer(t)
  const created = await (await postJson(`${server.url}/v1/classifiers`, { keep_images: true, examples: await colourExamples(2) })).json() as Record<string, any>
  const image = await colourImage(RED, 5)
  assert.equal((await postJson(`${server.url}/v1/classifiers/${created.id}/predict`, { input: image })).status, 200)

  // The bundle under the same name is replaced by a retrained one: the stored pin no longer matches.
  const store = server.app.classifierStore.raw
  assert.ok(store !== undefined)
  await store.db.updateTable('classifiers').set({ model_sha256: 'e'.repeat(64) }).where('id', '=', created.id).execute()
  await expectProblem(await postJson(`${server.url}/v1/classifiers/${created.id}/predict`, { input: image }), 409, 'CLASSIFIER_MODEL_MISMATCH')
  await expectProblem(await postJson(`${server.url}/v1/classifiers/${created.id}/examples`, { examples: [{ label: 'red', input: image }] }), 409, 'CLASSIFIER_MODEL_MISMATCH')

  const reembedded = await postJson(`${server.url}/v1/classifiers/${created.id}/reembed`, {})
  const r = await reembedded.json() as Record<string, any>
  assert.equal(reembedded.status, 200, JSON.stringify(r))
  assert.equal(r.version, 2)
  assert.equal(r.model, DEFAULT_MODEL)
  assert.equal(r.model_sha256, await encoderSha(server, DEFAULT_MODEL))
  assert.equal(r.num_examples, 4)
  const after = await postJson(`${server.url}/v1/classifiers/${created.id}/predict`, { input: image })
  assert.equal(after.status, 200)
  assert.equal((await after.json() as Record<string, any>).data[0].label, 'red')

  const noImages = await (await postJson(`${server.url}/v1/classifiers`, { examples: await colourExamples(1) })).json() as Record<string, any>
  await expectProblem(await postJson(`${server.url}/v1/classifiers/${noImages.id}/reembed`, {}), 409, 'CLASSIFIER_IMAGES_NOT_KEPT')
})

test('switching to the baseline bundle: 409 when its encoder differs, then re-embedding pins to it', async (t) => {
  const server = await startServer(t)
  const [mine, baseline] = [await encoderSha(server, DEFAULT_MODEL), await encoderSha(server, BASELINE_MODEL)]
  const created = await (await postJson(`${server.url}/v1/classifiers`, { keep_images: true, examples: await colourExamples(2) })).json() as Record<string, any>
  const image = await colourImage(BLUE, 5)
  if (mine === baseline) {
    // The untrained placeholder bundles share one encoder: the pin is the graph, not the name, so no 409.
    t.diagnostic('the two shipped bundles have the same encoder sha256 (untrained placeholders)')
    assert.equal((await postJson(`${server.url}/v1/classifiers/${created.id}/predict`, { input: image, model: BASELINE_MODEL })).status, 200)
    return
  }
  await expectProblem(await postJson(`${server.url}/v1/classifiers/${created.id}/predict`, { input: image, model: BASELINE_MODEL }), 409, 'CLASSIFIER_MODEL_MISMATCH')
  const r = await (await postJson(`${server.url}/v1/classifiers/${created.id}/reembed`, { model: BASELINE_MODEL })).json() as Record<string, any>
  assert.equal(r.model, BASELINE_MODEL)
  assert.equal(r.model_sha256, baseline)
  const after = await (await postJson(`${server.url}/v1/classifiers/${created.id}/predict`, { input: image })).json() as Record<string, any>
  assert.equal(after.model, BASELINE_MODEL, 'defaults to the pinned model')
  await expectProblem(await postJson(`${server.url}/v1/classifiers/${created.id}/predict`, { input: image, model: DEFAULT_MODEL }), 409, 'CLASSIFIER_MODEL_MISMATCH')
})

test('export and import: same predictions; an import pinned to another sha256 is 409 on predict', async (t) => {
  const server = await startServer(t)
  const examples = [0, 1, 2, 3, 4, 5].map((i) => ({ label: i % 2 === 0 ? 'even' : 'odd', embedding: randomEmbedding(i) }))
  const created = await (await postJson(`${server.url}/v1/classifiers`, { name: 'parity', examples })).json() as Record<string, any>
  const exported = await (await fetch(`${server.url}/v1/classifiers/${created.id}/export`)).json() as Record<string, any>
  assert.equal(exported.format, 'clmae-classifier')
  assert.equal(exported.embedding.sha256, created.model_sha256)
  assert.equal(exported.probe.weights.length, 2)
  assert.equal(exported.probe.mean.length, 192)
  assert.equal(exported.examples.length, 6)

  const imported = await postJson(`${server.url}/v1/classifiers/import`, exported)
  const i = await imported.json() as Record<string, any>
  assert.equal(imported.status, 201, JSON.stringify(i))
  assert.notEqual(i.id, created.id)
  const queries = { embeddings: [randomEmbedding(10), randomEmbedding(11)] }
  const a = await (await postJson(`${server.url}/v1/classifiers/${created.id}/predict`, queries)).json() as Record<string, any>
  const b = await (await postJson(`${server.url}/v1/classifiers/${i.id}/predict`, queries)).json() as Record<string, any>
  assert.deepEqual(b.data, a.data)

  const foreign = await (await postJson(`${server.url}/v1/classifiers/import`, { ...exported, embedding: { ...exported.embedding, sha256: 'f'.repeat(64) } })).json() as Record<string, any>
  await expectProblem(await postJson(`${server.url}/v1/classifiers/${foreign.id}/predict`, queries), 409, 'CLASSIFIER_MODEL_MISMATCH')

  const weightsOnly = await (await postJson(`${server.url}/v1/classifiers/import`, { ...exported, examples: undefined })).json() as Record<string, any>
  assert.equal(weightsOnly.refittable, false)
  await expectProblem(await postJson(`${server.url}/v1/classifiers/${weightsOnly.id}/examples`, { examples }), 409, 'CLASSIFIER_NOT_REFITTABLE')
  await expectProblem(await postJson(`${server.url}/v1/classifiers/import`, { ...exported, labels: ['even', 'odd', 'third'] }), 422, 'CLASSIFIER_IMPORT_INVALID')
  await expectProblem(await postJson(`${server.url}/v1/classifiers/import`, { ...exported, probe: { ...exported.probe, std: exported.probe.std.map(() => 0) } }), 422, 'CLASSIFIER_IMPORT_INVALID')
  await expectProblem(await postJson(`${server.url}/v1/classifiers/import`, { ...exported, format_version: 2 }), 400, 'REQUEST_VALIDATION_FAILED')
})

test('bad inputs of every kind get their coded 4xx', async (t) => {
  const server = await startServer(t, { classifierMaxLabelChars: 8, classifierMaxExamplesPerRequest: 6, classifierMaxClasses: 3, classifierMaxExamples: 8, maxClassifiers: 2 })
  const url = `${server.url}/v1/classifiers`
  const e = (label: string, seed: number) => ({ label, embedding: randomEmbedding(seed) })
  await expectProblem(await postJson(url, { examples: [] }), 400, 'CLASSIFIER_EXAMPLES_MISSING')
  await expectProblem(await postJson(url, { examples: [e('a', 1), e('a', 2)] }), 422, 'CLASSIFIER_TOO_FEW_CLASSES')
  await expectProblem(await postJson(url, { examples: [e('a', 1), e('much-too-long', 2)] }), 400, 'CLASSIFIER_LABEL_TOO_LONG')
  await expectProblem(await postJson(url, { examples: [e('a', 1), e('', 2)] }), 400, 'CLASSIFIER_LABEL_INVALID')
  await expectProblem(await postJson(url, { examples: [1, 2, 3, 4, 5, 6, 7].map((s) => e(`l${s % 2}`, s)) }), 413, 'CLASSIFIER_TOO_MANY_EXAMPLES')
  await expectProblem(await postJson(url, { examples: [e('a', 1), e('b', 2), e('c', 3), e('d', 4)] }), 422, 'CLASSIFIER_TOO_MANY_CLASSES')
  await expectProblem(await postJson(url, { examples: [e('a', 1), { label: 'b', embedding: [1, 2, 3] }] }), 422, 'CLASSIFIER_EMBEDDING_INVALID')
  await expectProblem(await postJson(url, { examples: [e('a', 1), { label: 'b', input: 'not base64 !!' }] }), 400, 'IMAGE_BASE64_INVALID')
  await expectProblem(await postJson(url, { examples: [e('a', 1), { label: 'b', input: await colourImage(RED, 0), embedding: randomEmbedding(3) }] }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url, { examples: [e('a', 1), e('b', 2)], method: 'svm' }), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(url, { examples: [e('a', 1), e('b', 2)], model: 'no-such-model' }), 404, 'MODEL_NOT_FOUND')
  await expectProblem(await fetch(url, { method: 'POST', headers: { 'content-type': 'image/png' }, body: Buffer.from('x') }), 415, 'REQUEST_MEDIA_TYPE_UNSUPPORTED')
  await expectProblem(await fetch(`${url}?limit=0`), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await fetch(`${url}?cursor=%25%25`), 400, 'REQUEST_VALIDATION_FAILED')
  await expectProblem(await postJson(`${url}/clf_missing/predict`, { embeddings: [randomEmbedding(1)] }), 404, 'CLASSIFIER_NOT_FOUND')

  const first = await (await postJson(url, { examples: [e('a', 1), e('b', 2), e('a', 3), e('b', 4)] })).json() as Record<string, any>
  await expectProblem(await postJson(`${url}/${first.id}/predict`, { embeddings: [[1, 2]] }), 422, 'CLASSIFIER_EMBEDDING_INVALID')
  await expectProblem(await postJson(`${url}/${first.id}/predict`, {}), 400, 'IMAGE_MISSING')
  await expectProblem(await postJson(`${url}/${first.id}/examples`, { examples: [e('a', 5), e('b', 6), e('a', 7), e('b', 8), e('a', 9)] }), 422, 'CLASSIFIER_FULL')
  await expectProblem(await postJson(`${url}/${first.id}/examples`, { examples: [e('c', 5), e('d', 6)] }), 422, 'CLASSIFIER_TOO_MANY_CLASSES')
  assert.equal((await postJson(url, { examples: [e('a', 1), e('b', 2)] })).status, 201)
  await expectProblem(await postJson(url, { examples: [e('a', 1), e('b', 2)] }), 409, 'CLASSIFIER_LIMIT_REACHED')
})

test('classifiers survive a restart of the app on the same database file', async (t) => {
  const server = await startServer(t)
  const created = await (await postJson(`${server.url}/v1/classifiers`, { method: 'knn', examples: [0, 1, 2, 3].map((i) => ({ label: `l${i % 2}`, embedding: randomEmbedding(i) })) })).json() as Record<string, any>
  const before = await (await postJson(`${server.url}/v1/classifiers/${created.id}/predict`, { embeddings: [randomEmbedding(9)] })).json()
  await server.app.close()
  const again = await startServer(t, { dbPath: server.config.dbPath, databaseUrl: server.config.databaseUrl })
  const got = await (await fetch(`${again.url}/v1/classifiers/${created.id}`)).json()
  assert.deepEqual(got, created)
  const after = await (await postJson(`${again.url}/v1/classifiers/${created.id}/predict`, { embeddings: [randomEmbedding(9)] })).json()
  assert.deepEqual(after, before)
})

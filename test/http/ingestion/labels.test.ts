/**
 * Labels are user text: Object.prototype names, emoji and right-to-left text work end to end (create,
 * list, get, predict, export, import, in JSON and multipart), and only what is not a label is refused:
 * empty, U+0000, a lone surrogate (CLASSIFIER_LABEL_INVALID), more than 64 code points
 * (CLASSIFIER_LABEL_TOO_LONG; an emoji counts once).
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import sharp from 'sharp'
import { checkLabel } from '../../../src/http/ingestion/labels.js'
import { ApiError } from '../../../src/errors.js'
import { postJson, startServer, type TestServer } from '../../helpers/server.js'
import { expectProblem } from '../../helpers/problem.js'

const LABELS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', '🐕‍🦺 dog', 'كلب', 'כלב']

/** Well separated embeddings: label k points along its own axes. */
function embedding (k: number, j: number): number[] {
  return Array.from({ length: 192 }, (_, d) => (d % LABELS.length === k ? 1 : 0) + 0.01 * Math.sin(d * (j + 1)))
}

let server: TestServer
before(async () => { server = await startServer(undefined) })
after(async () => { await server.app.close() })

test('checkLabel: what is a label and what is not', () => {
  for (const label of [...LABELS, ' ', 'a'.repeat(64), '😀'.repeat(64), 'e\u0301']) assert.doesNotThrow(() => checkLabel(label, 64), label)
  const code = (label: string): string => { try { checkLabel(label, 64); return 'ok' } catch (e) { return (e as ApiError).code } }
  assert.equal(code(''), 'CLASSIFIER_LABEL_INVALID')
  assert.equal(code('a\u0000b'), 'CLASSIFIER_LABEL_INVALID')
  assert.equal(code('\ud800'), 'CLASSIFIER_LABEL_INVALID')
  assert.equal(code('x\udc00'), 'CLASSIFIER_LABEL_INVALID')
  assert.equal(code('a'.repeat(65)), 'CLASSIFIER_LABEL_TOO_LONG')
  assert.equal(code('😀'.repeat(65)), 'CLASSIFIER_LABEL_TOO_LONG')
})

test('Object.prototype names, emoji and RTL labels: create, list, get, predict, export, import (JSON)', async () => {
  const examples = LABELS.flatMap((label, k) => [0, 1, 2].map((j) => ({ label, embedding: embedding(k, j) })))
  const created = await postJson(`${server.url}/v1/classifiers`, { name: 'labels', method: 'logreg', examples })
  const classifier = await created.json() as any
  assert.equal(created.status, 201, JSON.stringify(classifier))
  assert.deepEqual(classifier.labels.map((l: any) => l.label).sort(), [...LABELS].sort())
  for (const l of classifier.labels) assert.equal(l.count, 3, l.label)

  const list = await (await fetch(`${server.url}/v1/classifiers`)).json() as any
  assert.ok(list.data.some((c: any) => c.id === classifier.id))
  const got = await (await fetch(`${server.url}/v1/classifiers/${classifier.id}`)).json() as any
  assert.deepEqual(got.labels, classifier.labels)

  const predict = async (id: string): Promise<string[]> => {
    const response = await postJson(`${server.url}/v1/classifiers/${id}/predict`, { embeddings: LABELS.map((_, k) => embedding(k, 7)), top_k: 2 })
    const body = await response.json() as any
    assert.equal(response.status, 200, JSON.stringify(body))
    return body.data.map((p: any) => p.label)
  }
  assert.deepEqual(await predict(classifier.id), LABELS)

  const exported = await (await fetch(`${server.url}/v1/classifiers/${classifier.id}/export`)).json() as any
  assert.deepEqual([...exported.labels].sort(), [...LABELS].sort())
  const imported = await postJson(`${server.url}/v1/classifiers/import`, exported)
  const copy = await imported.json() as any
  assert.equal(imported.status, 201, JSON.stringify(copy))
  assert.deepEqual(copy.labels, classifier.labels)
  assert.deepEqual(await predict(copy.id), LABELS)

  // add examples with one more Object.prototype name: the counts stay per label
  const added = await postJson(`${server.url}/v1/classifiers/${classifier.id}/examples`, { examples: [{ label: 'valueOf', embedding: embedding(0, 9) }, { label: '__proto__', embedding: embedding(0, 8) }] })
  const after = await added.json() as any
  assert.equal(added.status, 200, JSON.stringify(after))
  assert.equal(after.labels.find((l: any) => l.label === '__proto__').count, 4)
  assert.equal(after.labels.find((l: any) => l.label === 'valueOf').count, 1)
})

test('the same labels through multipart (UTF-8 text fields), predicted from images', async () => {
  const form = new FormData()
  for (const [k, label] of LABELS.entries()) {
    for (const j of [0, 1]) {
      const png = await sharp({ create: { width: 24, height: 24, channels: 3, background: { r: (k * 37) % 256, g: (k * 91 + j * 3) % 256, b: (255 - k * 30) % 256 } } }).png().toBuffer()
      form.append('file', new Blob([new Uint8Array(png)], { type: 'image/png' }), `${k}-${j}.png`)
      form.append('label', label)
    }
  }
  form.append('method', 'centroid')
  const created = await fetch(`${server.url}/v1/classifiers`, { method: 'POST', body: form })
  const classifier = await created.json() as any
  assert.equal(created.status, 201, JSON.stringify(classifier))
  assert.deepEqual(classifier.labels.map((l: any) => l.label).sort(), [...LABELS].sort())
  const query = await sharp({ create: { width: 24, height: 24, channels: 3, background: { r: 0, g: 0, b: 255 } } }).png().toBuffer()
  const predicted = await fetch(`${server.url}/v1/classifiers/${classifier.id}/predict`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(query) })
  const body = await predicted.json() as any
  assert.equal(predicted.status, 200, JSON.stringify(body))
  assert.equal(body.data[0].label, '__proto__', 'the blue image is nearest the blue example (label __proto__)')
})

test('invalid labels are refused with their code, in JSON, multipart and import', async () => {
  const e = (label: string, k: number): { label: string, embedding: number[] } => ({ label, embedding: embedding(k % LABELS.length, 0) })
  const url = `${server.url}/v1/classifiers`
  await expectProblem(await postJson(url, { examples: [e('a', 0), e('', 1)] }), 400, 'CLASSIFIER_LABEL_INVALID')
  await expectProblem(await postJson(url, { examples: [e('a', 0), e('b\u0000', 1)] }), 400, 'CLASSIFIER_LABEL_INVALID')
  // a lone surrogate can only be sent as a JSON escape
  const lone = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"examples":[{"label":"a","embedding":[${embedding(0, 0).join(',')}]},{"label":"x\\ud800","embedding":[${embedding(1, 0).join(',')}]}]}` })
  await expectProblem(lone, 400, 'CLASSIFIER_LABEL_INVALID')
  await expectProblem(await postJson(url, { examples: [e('a', 0), e('x'.repeat(65), 1)] }), 400, 'CLASSIFIER_LABEL_TOO_LONG')
  assert.equal((await postJson(url, { examples: [e('a', 0), e('😀'.repeat(64), 1)] })).status, 201, '64 emoji are 64 characters')

  const form = new FormData()
  const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toBuffer()
  form.append('file', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'a.png')
  form.append('label', 'ok')
  form.append('file', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'b.png')
  form.append('label', 'bad\u0000label')
  await expectProblem(await fetch(url, { method: 'POST', body: form }), 400, 'CLASSIFIER_LABEL_INVALID')

  const created = await (await postJson(url, { examples: [e('a', 0), e('b', 1)] })).json() as any
  const exported = await (await fetch(`${url}/${created.id}/export`)).json() as any
  exported.labels = ['a', '']
  await expectProblem(await postJson(`${url}/import`, exported), 400, 'CLASSIFIER_LABEL_INVALID')
})

/**
 * Exports of format version 1 written by an earlier build still import: the fixture
 * (test/fixtures/store/f471e1f-exports.json) holds exports the service of main at f471e1f wrote over
 * HTTP, one per probe method, and the predictions it gave (write-f471e1f-exports.ts, run from a worktree
 * of that commit). Imported here, with and without their examples, each predicts the same: labels and
 * rankings equal, probabilities within 1e-5 (probes are now stored as float32, they were doubles).
 * The exports pin f471e1f's default encoder, since retrained (issue 16): as written they import and answer
 * 409 CLASSIFIER_MODEL_MISMATCH; re-pinned to the served encoder (the queries are embeddings, so the
 * probes' answers do not depend on it) they must predict what that build predicted.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { postJson, startServer } from '../../helpers/server.js'
import { TEST_DIALECT } from '../../helpers/test-database.js'

const PROBABILITY_TOLERANCE = 1e-5

interface Prediction { label: string | null, top_k: { label: string, probability: number }[], neighbours?: { label: string, similarity: number }[] }
const fixture = JSON.parse(readFileSync(new URL('../../fixtures/store/f471e1f-exports.json', import.meta.url), 'utf8')) as {
  queries: number[][]
  classifiers: { method: string, export: Record<string, unknown> & { format_version: number, examples?: unknown[] }, predictions: Prediction[] }[]
}

test(`[${TEST_DIALECT}] format-1 exports written by f471e1f import and predict what that build predicted`, async (t) => {
  const server = await startServer(t)
  assert.deepEqual(fixture.classifiers.map((c) => c.method), ['logreg', 'knn', 'centroid'])
  const models = await (await fetch(`${server.url}/v1/models`)).json() as { data: { id: string, sha256: { encoder: string } }[] }
  const asWritten = fixture.classifiers[0].export
  const pinned = (asWritten.embedding as { model: string, sha256: string })
  const served = models.data.find((m) => m.id === pinned.model)!.sha256.encoder
  assert.notEqual(served, pinned.sha256, 'the default model was retrained after f471e1f')
  const stale = await (await postJson(`${server.url}/v1/classifiers/import`, asWritten)).json() as { id: string }
  const refused = await postJson(`${server.url}/v1/classifiers/${stale.id}/predict`, { embeddings: fixture.queries, top_k: 3 })
  assert.equal(refused.status, 409)
  assert.equal((await refused.json() as { error: { code: string } }).error.code, 'CLASSIFIER_MODEL_MISMATCH')

  for (const old of fixture.classifiers) {
    assert.equal(old.export.format_version, 1)
    const repinned = { ...old.export, embedding: { ...(old.export.embedding as object), sha256: served } }
    for (const doc of [repinned, { ...repinned, examples: undefined }]) {
      const imported = await postJson(`${server.url}/v1/classifiers/import`, doc)
      const c = await imported.json() as { id: string, refittable: boolean }
      assert.equal(imported.status, 201, JSON.stringify(c))
      assert.equal(c.refittable, doc.examples !== undefined)
      const answer = await postJson(`${server.url}/v1/classifiers/${c.id}/predict`, { embeddings: fixture.queries, top_k: 3 })
      const now = (await answer.json() as { data: Prediction[] }).data
      assert.equal(answer.status, 200)
      now.forEach((p, i) => {
        const was = old.predictions[i]
        const where = `${old.method} query ${i}`
        assert.equal(p.label, was.label, where)
        assert.deepEqual(p.top_k.map((x) => x.label), was.top_k.map((x) => x.label), where)
        p.top_k.forEach((x, k) => assert.ok(Math.abs(x.probability - was.top_k[k].probability) < PROBABILITY_TOLERANCE, `${where}: ${x.probability} vs ${was.top_k[k].probability}`))
        // kNN: the same neighbours (their ids are the new store's)
        assert.deepEqual(p.neighbours?.map((n) => n.label), was.neighbours?.map((n) => n.label), where)
        p.neighbours?.forEach((n, k) => assert.ok(Math.abs(n.similarity - (was.neighbours?.[k].similarity ?? NaN)) < PROBABILITY_TOLERANCE, where))
      })
    }
  }
})

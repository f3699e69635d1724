/**
 * Export then import round-trips at the documented limits: a kNN classifier (the largest export: its
 * probe carries every example embedding, and the export carries them again) of classifierMaxExamples
 * examples and classifierMaxClasses labels at D = 1280 (ViT-H/14: the largest D the service serves, README
 * "Importing a released checkpoint") fits under the classifier body limit, imports, and exports again unchanged.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postJson, startServer } from '../../helpers/server.js'
import { TEST_DIALECT } from '../../helpers/test-database.js'

test(`[${TEST_DIALECT}] a kNN export at the example and class limits at D = 1280 imports and exports again unchanged`, { timeout: 300_000 }, async (t) => {
  const server = await startServer(t)
  const { classifierMaxExamples: N, classifierMaxClasses: K, classifierBodyLimitBytes } = server.config
  const D = 1280 // ViT-H/14
  const labels = Array.from({ length: K }, (_, k) => `label-${String(k).padStart(2, '0')}`)
  const rows = Array.from({ length: N }, (_, i) => Array.from({ length: D }, (_, j) => Math.fround(Math.sin(i * 3.7 + j * 0.11))))
  const exampleLabels = rows.map((_, i) => i % K)
  const doc = {
    format: 'clmae-classifier',
    format_version: 1,
    name: 'at-the-limits',
    method: 'knn',
    version: 1,
    labels,
    embedding: { model: 'mae-vit-huge-p14-224', sha256: 'b'.repeat(64), pooling: 'mean', normalize: true, dim: D },
    probe: { method: 'knn', k: 3, examples: rows, example_labels: exampleLabels, example_ids: rows.map((_, i) => i) },
    cross_validation: { scheme: null, accuracy: null },
    examples: rows.map((embedding, i) => ({ label: labels[exampleLabels[i]], embedding }))
  }
  const body = JSON.stringify(doc)
  t.diagnostic(`export at ${N} x ${K} x ${D}: ${(body.length / 2 ** 20).toFixed(1)} MiB (limit ${classifierBodyLimitBytes / 2 ** 20} MiB)`)
  assert.ok(body.length < classifierBodyLimitBytes, 'the export fits the import body limit')
  const imported = await postJson(`${server.url}/v1/classifiers/import`, doc)
  const c = await imported.json() as { id: string, num_examples: number }
  assert.equal(imported.status, 201, JSON.stringify(c).slice(0, 500))
  assert.equal(c.num_examples, N)
  const exported = await (await fetch(`${server.url}/v1/classifiers/${c.id}/export`)).json() as typeof doc
  assert.deepEqual(exported.labels, labels)
  assert.deepEqual(exported.examples, doc.examples, 'float32 values come back exactly')
  assert.deepEqual(exported.probe.examples, doc.probe.examples)
  assert.deepEqual(exported.probe.example_labels, doc.probe.example_labels)
  const again = await postJson(`${server.url}/v1/classifiers/import`, exported)
  assert.equal(again.status, 201)
})

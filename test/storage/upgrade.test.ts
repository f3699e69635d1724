/**
 * A SQLite store written by main at f471e1f (test/fixtures/store/f471e1f.sqlite: schema user_version 1,
 * probes as JSON; written by write-f471e1f-store.ts with that commit's code) is adopted in place: it
 * opens, migrates to binary probes, and every classifier predicts what it predicted before (float32
 * probes: probabilities within 1e-5, the same ranking), keeps its examples and images, and refits.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { openStoreDatabase, SCHEMA_VERSION } from '../../src/storage/database.js'
import { ClassifierStore } from '../../src/storage/classifier-store.js'
import { fitProbe, predictProbe, type Prediction } from '../../src/fewshot/classifiers.js'
import { matrixFromRows } from '../../src/fewshot/matrix.js'

const FIXTURE = new URL('../fixtures/store/', import.meta.url)
const expected = JSON.parse(readFileSync(new URL('f471e1f.expected.json', FIXTURE), 'utf8')) as {
  queries: number[][]
  classifiers: Record<string, { method: string, version: number, numExamples: number, predictions: Prediction[] }>
}

test('a store written by f471e1f is adopted in place and predicts the same', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clmae-upgrade-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'old.sqlite')
  copyFileSync(new URL('f471e1f.sqlite', FIXTURE), path)
  const before = new Database(path, { readonly: true })
  assert.equal(before.pragma('user_version', { simple: true }), 1, 'the fixture is a user_version 1 file')
  assert.ok((before.prepare('SELECT probe_json FROM classifiers').all() as unknown[]).length === 3)
  before.close()

  const database = await openStoreDatabase({ dbPath: path })
  t.after(async () => { await database.close() })
  assert.equal(database.migratedFrom, 1)
  assert.equal(database.sqlite?.pragma('user_version', { simple: true }), SCHEMA_VERSION)
  const store = new ClassifierStore(database.db, database.dialect)
  assert.equal(await store.count(), 3)
  for (const [id, old] of Object.entries(expected.classifiers)) {
    const c = await store.require(id)
    assert.equal(c.method, old.method)
    assert.equal(c.version, old.version)
    assert.equal(c.numExamples, old.numExamples)
    const now = predictProbe(c.probe, matrixFromRows(expected.queries), { topK: 3 })
    now.forEach((p, i) => {
      const was = old.predictions[i]
      assert.equal(p.label, was.label, `${old.method} query ${i}`)
      assert.deepEqual(p.top.map((x) => x.label), was.top.map((x) => x.label))
      p.top.forEach((x, k) => assert.ok(Math.abs(x.probability - was.top[k].probability) < 1e-5, `${old.method} query ${i} p ${x.probability} vs ${was.top[k].probability}`))
      if (was.neighbours !== undefined) assert.deepEqual(p.neighbours?.map((n) => n.id), was.neighbours.map((n) => n.id))
    })
    // examples (and kept images) came along, and the classifier refits on them
    const examples = await store.examples(id, { withImages: true })
    assert.equal(examples.length, old.numExamples)
    if (c.keepImages) assert.ok(examples.every((e) => e.image?.toString().startsWith('image-') === true))
    const fit = fitProbe(c.method, matrixFromRows(examples.map((e) => Array.from(e.embedding))), examples.map((e) => e.label))
    const grown = await store.addExamples(id, [], fit, c.version)
    assert.equal(grown.version, c.version + 1)
  }
  // the labels include "__proto__": counted in a Map, not on a plain object
  assert.equal((await store.requireHead(Object.keys(expected.classifiers)[0])).counts.get('__proto__'), 4)
})

test('the f471e1f build refuses an upgraded file instead of misreading it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clmae-upgrade-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'old.sqlite')
  copyFileSync(new URL('f471e1f.sqlite', FIXTURE), path)
  await (await openStoreDatabase({ dbPath: path })).close()
  const after = new Database(path, { readonly: true })
  t.after(() => after.close())
  assert.ok((after.pragma('user_version', { simple: true }) as number) > 1, 'f471e1f refuses user_version > 1 ("newer than this build")')
})

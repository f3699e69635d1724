import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openStoreDatabase, SCHEMA_VERSION, type StoreDatabase, type StoreLocation } from '../../src/storage/database.js'
import { ClassifierStore, type NewExample } from '../../src/storage/classifier-store.js'
import { fitProbe, type ProbeMethod } from '../../src/fewshot/classifiers.js'
import { matrixFromRows } from '../../src/fewshot/matrix.js'
import { ApiError } from '../../src/errors.js'
import { decodeProbe, encodeProbe } from '../../src/storage/probe-codec.js'
import { TEST_DIALECT, freshPostgresUrl } from '../helpers/test-database.js'

const PIN = { model: 'clmae-test', sha256: 'a'.repeat(64), pooling: 'mean' as const, normalize: true }

type Ctx = { after: (fn: () => Promise<void> | void) => void, diagnostic: (m: string) => void }

function tempDir (t: Ctx): string {
  const dir = mkdtempSync(join(tmpdir(), 'clmae-store-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A fresh store of the suite's dialect (SQLite file, or a new PostgreSQL database). */
async function openFresh (t: Ctx): Promise<{ database: StoreDatabase, store: ClassifierStore, location: StoreLocation }> {
  const location = TEST_DIALECT === 'postgres' ? { databaseUrl: await freshPostgresUrl(t), dbPath: '' } : { dbPath: join(tempDir(t), 'store.sqlite') }
  const database = await openStoreDatabase(location)
  t.after(async () => { await database.close() })
  return { database, store: new ClassifierStore(database.db, database.dialect), location }
}

const EXAMPLES: NewExample[] = [
  { label: 'cat', embedding: [1, 0, 0], image: Buffer.from('img-1') },
  { label: 'cat', embedding: [0.9, 0.1, 0], image: Buffer.from('img-2') },
  { label: 'dog', embedding: [0, 1, 0], image: Buffer.from('img-3') },
  { label: 'dog', embedding: [0, 0.8, 0.2], image: Buffer.from('img-4') }
]

function refitFrom (method: ProbeMethod) {
  return (all: { label: string, embedding: ArrayLike<number> }[]) =>
    fitProbe(method, matrixFromRows(all.map((e) => Array.from(e.embedding))), all.map((e) => e.label))
}

async function createOne (store: ClassifierStore, options: { method?: ProbeMethod, keepImages?: boolean, maxClassifiers?: number, name?: string } = {}) {
  const method = options.method ?? 'logreg'
  return await store.create({ name: options.name ?? 'pets', method, pin: PIN, keepImages: options.keepImages ?? false, dim: 3, refittable: true },
    refitFrom(method)(EXAMPLES), EXAMPLES, { maxClassifiers: options.maxClassifiers ?? 100 })
}

async function codeOf (fn: () => Promise<unknown>): Promise<string | undefined> {
  try { await fn() } catch (error) { return error instanceof ApiError ? error.code : String(error) }
  return undefined
}

test(`[${TEST_DIALECT}] the store opens at the latest schema version`, async (t) => {
  const { database } = await openFresh(t)
  const versions = await database.db.selectFrom('schema_migrations').select('version').orderBy('version').execute()
  assert.deepEqual(versions.map((v) => v.version), Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1))
  if (database.sqlite !== undefined) {
    assert.equal(database.sqlite.pragma('journal_mode', { simple: true }), 'wal')
    assert.equal(database.sqlite.pragma('synchronous', { simple: true }), 2) // 2 = FULL
    assert.equal(database.sqlite.pragma('user_version', { simple: true }), SCHEMA_VERSION)
    assert.equal(database.sqlite.pragma('locking_mode', { simple: true }), 'exclusive')
  }
})

test('the probe codec round-trips every method (float32)', () => {
  const x = matrixFromRows([[1, 0.5, 0], [0.9, 0.1, 0.3], [0, 1, 0.2], [0, 0.8, 0.2]])
  for (const method of ['logreg', 'knn', 'centroid'] as const) {
    const probe = fitProbe(method, x, ['a', 'a', 'b', 'b'], { exampleIds: [7, 8, 9, 10] }).probe
    const encoded = encodeProbe(probe)
    const back = decodeProbe(encoded.meta, Buffer.concat([Buffer.alloc(1), encoded.data]).subarray(1)) // unaligned, as a driver may hand it
    assert.deepEqual(back, JSON.parse(JSON.stringify(back)))
    const flat = (v: unknown): number[] => Array.isArray(v) ? v.flatMap(flat) : typeof v === 'number' ? [v] : []
    const a = flat(Object.values(probe.state))
    const b = flat(Object.values(back.state))
    assert.equal(a.length, b.length, method)
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-6 * Math.max(1, Math.abs(v)), `${method}[${i}] ${v} vs ${b[i]}`))
    assert.deepEqual(back.labels, probe.labels)
  }
})

test(`[${TEST_DIALECT}] create, get, examples, add examples (version up), delete (examples go too)`, async (t) => {
  const { database, store } = await openFresh(t)
  const created = await createOne(store, { keepImages: true })
  assert.match(created.id, /^clf_[0-9a-f]{16}$/)
  assert.equal(created.version, 1)
  assert.equal(created.numExamples, 4)
  assert.deepEqual(created.counts, new Map([['cat', 2], ['dog', 2]]))
  assert.deepEqual(created.pin, PIN)
  const stored = await store.examples(created.id, { withImages: true })
  assert.deepEqual(stored.map((e) => e.image?.toString()), ['img-1', 'img-2', 'img-3', 'img-4'])
  assert.ok(Math.abs(stored[1].embedding[0] - 0.9) < 1e-7)
  assert.equal((await store.examples(created.id))[0].image, null, 'images only when asked')

  const birds = [{ label: 'bird', embedding: [0, 0, 1] }, { label: 'bird', embedding: [0.1, 0, 0.9] }]
  const grown = await store.addExamples(created.id, birds, refitFrom('logreg')([...await store.examples(created.id), ...birds]), created.version)
  assert.equal(grown.version, 2)
  assert.deepEqual(grown.labels, ['bird', 'cat', 'dog'])
  assert.equal(grown.numExamples, 6)
  assert.equal(await codeOf(async () => await store.addExamples(created.id, birds, refitFrom('logreg')(EXAMPLES), 1)), 'CLASSIFIER_CONFLICT', 'a fit of an old version is refused')
  assert.equal(await store.probe(created.id, 1), undefined, 'old versions are gone')
  assert.deepEqual((await store.probe(created.id, 2))?.labels, ['bird', 'cat', 'dog'])

  assert.equal(await store.delete(created.id), true)
  assert.equal(await store.get(created.id), undefined)
  assert.equal(await store.delete(created.id), false)
  const left = await database.db.selectFrom('examples').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
  assert.equal(Number(left.n), 0)
  assert.equal(await codeOf(async () => await store.require(created.id)), 'CLASSIFIER_NOT_FOUND')
})

test(`[${TEST_DIALECT}] images are dropped unless the classifier keeps them; image chunks walk every example once`, async (t) => {
  const { store } = await openFresh(t)
  const c = await createOne(store, { keepImages: false })
  assert.ok((await store.examples(c.id, { withImages: true })).every((e) => e.image === null))
  const kept = await createOne(store, { keepImages: true })
  const chunks: string[][] = []
  for await (const chunk of store.imageChunks(kept.id, 3)) chunks.push(chunk.map((e) => e.image?.toString() ?? ''))
  assert.deepEqual(chunks, [['img-1', 'img-2', 'img-3'], ['img-4']])
})

test(`[${TEST_DIALECT}] kNN probes name stored example ids as neighbours`, async (t) => {
  const { store } = await openFresh(t)
  const c = await store.require((await createOne(store, { method: 'knn' })).id)
  assert.equal(c.probe.state.method, 'knn')
  if (c.probe.state.method === 'knn') assert.deepEqual(c.probe.state.example_ids, (await store.examples(c.id)).map((e) => e.id))
})

test(`[${TEST_DIALECT}] the classifier limit is enforced inside the insert transaction, also for concurrent creates`, async (t) => {
  const { store } = await openFresh(t)
  const outcomes = await Promise.all(Array.from({ length: 5 }, async () => await codeOf(async () => await createOne(store, { maxClassifiers: 2 }))))
  assert.deepEqual(outcomes.filter((o) => o === undefined).length, 2)
  assert.deepEqual(outcomes.filter((o) => o === 'CLASSIFIER_LIMIT_REACHED').length, 3)
  assert.equal(await store.count(), 2)
})

test(`[${TEST_DIALECT}] paging walks every classifier once, oldest first`, async (t) => {
  const { store } = await openFresh(t)
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push((await createOne(store, { name: `c${i}` })).id)
  const seen: string[] = []
  let cursor: string | undefined
  for (let pages = 0; pages < 10; pages++) {
    const page = await store.list({ limit: 2, cursor })
    seen.push(...page.items.map((c) => c.id))
    if (page.nextCursor === null) break
    cursor = page.nextCursor
  }
  assert.deepEqual(seen, ids)
  assert.equal(await codeOf(async () => await store.list({ limit: 2, cursor: 'bm90LWEtbnVtYmVy' })), 'REQUEST_VALIDATION_FAILED')
})

test(`[${TEST_DIALECT}] re-embedding replaces embeddings, re-pins and bumps the version`, async (t) => {
  const { store } = await openFresh(t)
  const c = await createOne(store, { keepImages: true })
  const newPin = { ...PIN, model: 'other', sha256: 'b'.repeat(64) }
  const examples = await store.examples(c.id)
  const fresh = [[0, 0, 1, 0], [0, 0, 0.9, 0.1], [1, 0, 0, 0], [0.9, 0, 0, 0.1]]
  const byId = new Map(examples.map((e, i) => [e.id, fresh[i]]))
  const fit = refitFrom('centroid')(examples.map((e, i) => ({ label: e.label, embedding: fresh[i] })))
  assert.equal(await codeOf(async () => await store.reembed(c.id, newPin, byId, fit, c.version + 1)), 'CLASSIFIER_CONFLICT', 'a fit of another version is refused')
  assert.equal(await codeOf(async () => await store.reembed(c.id, newPin, new Map([...byId].slice(1)), fit, c.version)), 'CLASSIFIER_CONFLICT', 'embeddings of other examples are refused')
  const after = await store.reembed(c.id, newPin, byId, fit, c.version)
  assert.equal(after.version, 2)
  assert.deepEqual(after.pin, newPin)
  assert.equal(after.dim, 4)
  assert.deepEqual(Array.from((await store.examples(c.id))[2].embedding), [1, 0, 0, 0])
})

test(`[${TEST_DIALECT}] refit locks serialise read-fit-write per classifier`, async (t) => {
  const { store } = await openFresh(t)
  const c = await createOne(store, { method: 'centroid' })
  // eight concurrent read-modify-write sections: each reads the version, waits, writes version + 1
  await Promise.all(Array.from({ length: 8 }, async (_, i) => await store.withRefitLock(c.id, async (locked) => {
    const latest = await locked.requireHead(c.id)
    await new Promise((resolve) => setTimeout(resolve, 5))
    const extra = [{ label: 'cat', embedding: [1, 0, i / 10] }]
    const all = [...await locked.examples(c.id), ...extra]
    return await locked.addExamples(c.id, extra, refitFrom('centroid')(all), latest.version)
  })))
  const final = await store.requireHead(c.id)
  assert.equal(final.version, 9)
  assert.equal(final.numExamples, 12)
})

test(`[${TEST_DIALECT}] refit sections of two replicas (two stores, two pools, no shared in-process lock) are serialised by the row lock`,
  { skip: TEST_DIALECT === 'sqlite' ? 'SQLite: one process per file (refused at open), so the in-process lock is the whole story' : false }, async (t) => {
    const { store, location } = await openFresh(t)
    const other = await openStoreDatabase(location)
    t.after(async () => { await other.close() })
    const replicas = [store, new ClassifierStore(other.db, other.dialect)]
    const c = await createOne(store, { method: 'centroid' })
    // each section reads the version, waits long enough for the other replica's section to start, writes version + 1:
    // without the row lock both read the same version and one of them is refused (CLASSIFIER_CONFLICT)
    const sections = Array.from({ length: 6 }, async (_, i) => await replicas[i % 2].withRefitLock(c.id, async (locked) => {
      const latest = await locked.requireHead(c.id)
      await new Promise((resolve) => setTimeout(resolve, 50))
      const extra = [{ label: 'cat', embedding: [1, 0, i / 10] }]
      return await locked.addExamples(c.id, extra, refitFrom('centroid')([...await locked.examples(c.id), ...extra]), latest.version)
    }))
    const outcomes = await Promise.allSettled(sections)
    assert.deepEqual(outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason)), [])
    const final = await store.requireHead(c.id)
    assert.deepEqual([final.version, final.numExamples], [7, 10])
  })

test(`[${TEST_DIALECT}] everything survives closing and reopening the store`, async (t) => {
  if (TEST_DIALECT === 'postgres') {
    const url = await freshPostgresUrl(t)
    const first = await openStoreDatabase({ databaseUrl: url, dbPath: '' })
    const c = await (new ClassifierStore(first.db, first.dialect)).require((await createOne(new ClassifierStore(first.db, first.dialect), { keepImages: true })).id)
    await first.close()
    const second = await openStoreDatabase({ databaseUrl: url, dbPath: '' })
    t.after(async () => { await second.close() })
    assert.deepEqual(await new ClassifierStore(second.db, second.dialect).get(c.id), c)
    return
  }
  const path = join(tempDir(t), 'store.sqlite')
  const first = await openStoreDatabase({ dbPath: path })
  const store = new ClassifierStore(first.db, first.dialect)
  const c = await store.require((await createOne(store, { keepImages: true })).id)
  await first.close()
  const second = await openStoreDatabase({ dbPath: path })
  t.after(async () => { await second.close() })
  assert.deepEqual(await new ClassifierStore(second.db, second.dialect).get(c.id), c)
})

test('SQLite: a file held by another live process is refused at open, naming the file', async (t) => {
  const path = join(tempDir(t), 'held.sqlite')
  const holder = await openStoreDatabase({ dbPath: path })
  const child = spawn(process.execPath, ['--import', 'tsx', '-e',
    `import('./src/storage/database.ts').then(async (m) => { try { await m.openStoreDatabase({ dbPath: ${JSON.stringify(path)} }); console.log('OPENED') } catch (e) { console.log('REFUSED ' + e.message) } })`],
  { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  await new Promise((resolve) => child.on('exit', resolve))
  assert.match(out, /REFUSED .*held\.sqlite.* is in use by another live process/)
  await holder.close()
  // released with the holder: the file opens again
  const again = await openStoreDatabase({ dbPath: path })
  await again.close()
})

test('SQLite: an unusable path is refused at open with a message naming it', async (t) => {
  const file = join(tempDir(t), 'a-file')
  writeFileSync(file, 'not a directory')
  const path = join(file, 'sub', 'store.sqlite')
  await assert.rejects(openStoreDatabase({ dbPath: path }), (error: Error) => error.name === 'StoreOpenError' && error.message.includes(path))
})

test('PostgreSQL: an unreachable server is refused at open, naming host and database but not the password', async () => {
  const error = await openStoreDatabase({ databaseUrl: 'postgres://clmae:s3cret-pass@127.0.0.1:1/clmae', dbPath: '' }).then(() => undefined, (e: Error) => e)
  assert.ok(error !== undefined)
  assert.equal(error.name, 'StoreOpenError')
  assert.match(error.message, /cannot reach PostgreSQL at 127\.0\.0\.1:1\/clmae/)
  assert.doesNotMatch(error.message, /s3cret/)
})

test(`[${TEST_DIALECT}] a store from a newer build is refused`, async (t) => {
  const { database, location } = await openFresh(t)
  await database.db.insertInto('schema_migrations').values({ version: SCHEMA_VERSION + 1, name: 'future', applied_at: new Date().toISOString() }).execute()
  await database.close()
  await assert.rejects(openStoreDatabase(location), /newer than this build/)
})

test('every acknowledged write survives SIGKILL of the writing process', { timeout: 120_000 }, async (t) => {
  const location = TEST_DIALECT === 'postgres' ? { databaseUrl: await freshPostgresUrl(t), dbPath: '' } : { dbPath: join(tempDir(t), 'store.sqlite') }
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/storage/store-writer.ts', JSON.stringify(location)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const acknowledged: string[] = []
  let buffered = ''
  await new Promise<void>((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', () => resolve())
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      acknowledged.push(...lines)
      if (acknowledged.length >= 40 && child.exitCode === null && !child.killed) child.kill('SIGKILL')
    })
  })
  assert.equal(child.signalCode, 'SIGKILL')
  const database = await openStoreDatabase(location)
  t.after(async () => { await database.close() })
  const store = new ClassifierStore(database.db, database.dialect)
  const missing: string[] = []
  for (const id of acknowledged) if (await store.head(id) === undefined) missing.push(id)
  assert.deepEqual(missing, [])
  assert.ok(await store.count() >= acknowledged.length)
})

test(`[${TEST_DIALECT}] Idempotency-Key records: claim, replay, reuse, and expiry after 24 h`, async (t) => {
  const { database } = await openFresh(t)
  const { claimKey, completeKey, purgeExpiredKeys, IDEMPOTENCY_TTL_MS } = await import('../../src/storage/idempotency.js')
  const claim = { scope: 's', key: 'k', hash: 'h1' }
  const now = 1_000_000_000_000
  assert.deepEqual(await claimKey(database.db, claim, { staleMs: 60_000, now }), { kind: 'new', claimedMs: now })
  assert.equal(await codeOf(async () => await claimKey(database.db, claim, { staleMs: 60_000, now: now + 1 })), 'IDEMPOTENCY_KEY_IN_PROGRESS')
  assert.deepEqual(await claimKey(database.db, claim, { staleMs: 60_000, now: now + 60_001 }), { kind: 'new', claimedMs: now + 60_001 }, 'a claim whose replica died is taken over')
  await completeKey(database.db, claim, now + 60_001, 201, { id: 'clf_x' })
  assert.deepEqual(await claimKey(database.db, claim, { staleMs: 60_000, now: now + 70_000 }), { kind: 'replay', status: 201, body: { id: 'clf_x' } })
  assert.equal(await codeOf(async () => await claimKey(database.db, { ...claim, hash: 'h2' }, { staleMs: 60_000, now: now + 70_000 })), 'IDEMPOTENCY_KEY_REUSED')
  assert.equal(await purgeExpiredKeys(database.db, now + 60_001 + IDEMPOTENCY_TTL_MS + 1), 1)
  assert.deepEqual(await claimKey(database.db, { ...claim, hash: 'h2' }, { staleMs: 60_000, now: now + 2 * IDEMPOTENCY_TTL_MS }), { kind: 'new', claimedMs: now + 2 * IDEMPOTENCY_TTL_MS }, 'after 24 h the key is free')
})

test(`[${TEST_DIALECT}] Idempotency-Key taken over from a slow (not dead) request: the slow one can neither record its answer nor free the new claim`, async (t) => {
  const { database, store } = await openFresh(t)
  const { claimKey, completeKey, releaseKey } = await import('../../src/storage/idempotency.js')
  const claim = { scope: 's', key: 'k', hash: 'h' }
  const t0 = 1_000_000_000_000
  const slow = await claimKey(database.db, claim, { staleMs: 60_000, now: t0 })
  const retry = await claimKey(database.db, claim, { staleMs: 60_000, now: t0 + 60_001 }) // the slow one looked dead
  assert.ok(slow.kind === 'new' && retry.kind === 'new')
  const fit = refitFrom('centroid')(EXAMPLES)
  const create = async (claimedMs: number): Promise<unknown> => await store.create({ name: `by ${claimedMs}`, method: 'centroid', pin: PIN, keepImages: false, dim: 3, refittable: true },
    fit, EXAMPLES, { maxClassifiers: 10 }, async (db, written) => { await completeKey(db, claim, claimedMs, 201, { id: written.id }) })
  // the slow request finishes first: its classifier and answer roll back together
  assert.equal(await codeOf(async () => await create(slow.claimedMs)), 'IDEMPOTENCY_KEY_IN_PROGRESS')
  assert.equal(await store.count(), 0, 'the slow request stored nothing')
  // and its failure path does not free the retry's claim (a third request would do the work again)
  await releaseKey(database.db, claim, slow.claimedMs)
  assert.equal(await codeOf(async () => await claimKey(database.db, claim, { staleMs: 60_000, now: t0 + 60_002 })), 'IDEMPOTENCY_KEY_IN_PROGRESS')
  await create(retry.claimedMs)
  assert.equal(await store.count(), 1)
  const replay = await claimKey(database.db, claim, { staleMs: 60_000, now: t0 + 60_003 })
  assert.equal(replay.kind, 'replay')
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase, SCHEMA_VERSION } from '../../src/storage/database.js'
import { ClassifierStore, type NewExample } from '../../src/storage/classifier-store.js'
import { fitProbe, type ProbeMethod } from '../../src/fewshot/classifiers.js'
import { matrixFromRows } from '../../src/fewshot/matrix.js'
import { ApiError } from '../../src/errors.js'

const PIN = { model: 'clmae-test', sha256: 'a'.repeat(64), pooling: 'mean' as const, normalize: true }

function tempDir (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'clmae-store-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
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

function createOne (store: ClassifierStore, options: { method?: ProbeMethod, keepImages?: boolean, maxClassifiers?: number, name?: string } = {}) {
  const method = options.method ?? 'logreg'
  return store.create({ name: options.name ?? 'pets', method, pin: PIN, keepImages: options.keepImages ?? false, dim: 3, refittable: true },
    refitFrom(method)(EXAMPLES), EXAMPLES, { maxClassifiers: options.maxClassifiers ?? 100 })
}

function codeOf (fn: () => unknown): string | undefined {
  try { fn() } catch (error) { return error instanceof ApiError ? error.code : String(error) }
  return undefined
}

test('the database opens in WAL mode with synchronous=FULL at the latest schema version', (t) => {
  const db = openDatabase(join(tempDir(t), 'nested', 'dir', 'store.sqlite'))
  t.after(() => db.close())
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal')
  assert.equal(db.pragma('synchronous', { simple: true }), 2) // 2 = FULL
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION)
  assert.equal(db.pragma('foreign_keys', { simple: true }), 1)
})

test('a database from a newer build is refused', (t) => {
  const path = join(tempDir(t), 'store.sqlite')
  const db = openDatabase(path)
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
  db.close()
  assert.throws(() => openDatabase(path), /newer than this build/)
})

test('create, get, examples, add examples (version up), delete (examples cascade)', (t) => {
  const db = openDatabase(':memory:')
  t.after(() => db.close())
  const store = new ClassifierStore(db)
  const created = createOne(store, { keepImages: true })
  assert.match(created.id, /^clf_[0-9a-f]{16}$/)
  assert.equal(created.version, 1)
  assert.equal(created.numExamples, 4)
  assert.deepEqual(created.counts, new Map([['cat', 2], ['dog', 2]]))
  assert.deepEqual(created.pin, PIN)
  const stored = store.examples(created.id, { withImages: true })
  assert.deepEqual(stored.map((e) => e.image?.toString()), ['img-1', 'img-2', 'img-3', 'img-4'])
  assert.ok(Math.abs(stored[1].embedding[0] - 0.9) < 1e-7)
  assert.equal(store.examples(created.id)[0].image, null, 'images only when asked')

  const birds = [{ label: 'bird', embedding: [0, 0, 1] }, { label: 'bird', embedding: [0.1, 0, 0.9] }]
  const grown = store.addExamples(created.id, birds, refitFrom('logreg')([...store.examples(created.id), ...birds]), created.version)
  assert.equal(grown.version, 2)
  assert.deepEqual(grown.probe.labels, ['bird', 'cat', 'dog'])
  assert.equal(grown.numExamples, 6)

  assert.equal(store.delete(created.id), true)
  assert.equal(store.get(created.id), undefined)
  assert.equal(store.delete(created.id), false)
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM examples').get() as { n: number }).n, 0)
  assert.equal(codeOf(() => store.require(created.id)), 'CLASSIFIER_NOT_FOUND')
})

test('images are dropped unless the classifier keeps them', (t) => {
  const db = openDatabase(':memory:')
  t.after(() => db.close())
  const store = new ClassifierStore(db)
  const c = createOne(store, { keepImages: false })
  assert.ok(store.examples(c.id, { withImages: true }).every((e) => e.image === null))
})

test('kNN probes name stored example ids as neighbours', (t) => {
  const db = openDatabase(':memory:')
  t.after(() => db.close())
  const store = new ClassifierStore(db)
  const c = createOne(store, { method: 'knn' })
  assert.equal(c.probe.state.method, 'knn')
  if (c.probe.state.method === 'knn') assert.deepEqual(c.probe.state.example_ids, store.examples(c.id).map((e) => e.id))
})

test('the classifier limit is enforced inside the insert transaction', (t) => {
  const db = openDatabase(':memory:')
  t.after(() => db.close())
  const store = new ClassifierStore(db)
  createOne(store, { maxClassifiers: 2 })
  createOne(store, { maxClassifiers: 2 })
  assert.equal(codeOf(() => createOne(store, { maxClassifiers: 2 })), 'CLASSIFIER_LIMIT_REACHED')
  assert.equal(store.count(), 2)
})

test('paging walks every classifier once, oldest first', (t) => {
  const db = openDatabase(':memory:')
  t.after(() => db.close())
  const store = new ClassifierStore(db)
  const ids = Array.from({ length: 5 }, (_, i) => createOne(store, { name: `c${i}` }).id)
  const seen: string[] = []
  let cursor: string | undefined
  for (let pages = 0; pages < 10; pages++) {
    const page = store.list({ limit: 2, cursor })
    seen.push(...page.items.map((c) => c.id))
    if (page.nextCursor === null) break
    cursor = page.nextCursor
  }
  assert.deepEqual(seen, ids)
  assert.equal(codeOf(() => store.list({ limit: 2, cursor: 'bm90LWEtbnVtYmVy' })), 'REQUEST_VALIDATION_FAILED')
})

test('re-embedding replaces embeddings, re-pins and bumps the version', (t) => {
  const db = openDatabase(':memory:')
  t.after(() => db.close())
  const store = new ClassifierStore(db)
  const c = createOne(store, { keepImages: true })
  const newPin = { ...PIN, model: 'other', sha256: 'b'.repeat(64) }
  const fresh = [[0, 0, 1, 0], [0, 0, 0.9, 0.1], [1, 0, 0, 0], [0.9, 0, 0, 0.1]]
  const fit = refitFrom('centroid')(store.examples(c.id).map((e, i) => ({ label: e.label, embedding: fresh[i] })))
  assert.throws(() => store.reembed(c.id, newPin, fresh, fit, c.version + 1), /moved from version 2 to 1/, 'a fit of another version is refused')
  const after = store.reembed(c.id, newPin, fresh, fit, c.version)
  assert.equal(after.version, 2)
  assert.deepEqual(after.pin, newPin)
  assert.equal(after.dim, 4)
  assert.deepEqual(Array.from(store.examples(c.id)[2].embedding), [1, 0, 0, 0])
})

test('everything survives closing and reopening the file', (t) => {
  const path = join(tempDir(t), 'store.sqlite')
  const first = openDatabase(path)
  const c = createOne(new ClassifierStore(first), { keepImages: true })
  first.close()
  const second = openDatabase(path)
  t.after(() => second.close())
  const again = new ClassifierStore(second).get(c.id)
  assert.deepEqual(again, c)
})

test('every acknowledged write survives SIGKILL of the writing process', { timeout: 60_000 }, async (t) => {
  const path = join(tempDir(t), 'store.sqlite')
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/storage/store-writer.ts', path], { stdio: ['ignore', 'pipe', 'inherit'] })
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
  const db = openDatabase(path)
  t.after(() => db.close())
  const store = new ClassifierStore(db)
  const missing = acknowledged.filter((id) => store.get(id) === undefined)
  assert.deepEqual(missing, [])
  assert.ok(store.count() >= acknowledged.length)
})

// ---- the real server process, killed with SIGKILL during a stream of writes

async function freePort (): Promise<number> {
  const { createServer } = await import('node:net')
  return await new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

function startServerProcess (env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  return { child, stderr: () => stderr }
}

async function waitReady (url: string, child: ReturnType<typeof spawn>, stderr: () => string): Promise<void> {
  for (let i = 0; i < 1800; i++) { // up to 180 s: start-up loads and warms up both bundles, slow on a busy CPU
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}): ${stderr()}`)
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) return
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`server not ready after 180 s: ${stderr()}`)
}

test('every write the server acknowledged survives SIGKILL of the server process', { timeout: 600_000 }, async (t) => {
  const dir = tempDir(t)
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const env = {
    CLMAE_HOST: '127.0.0.1',
    CLMAE_PORT: String(port),
    CLMAE_DB_PATH: join(dir, 'clmae.sqlite'),
    CLMAE_MODELS_DIR: new URL('../../models/', import.meta.url).pathname,
    CLMAE_LOG_LEVEL: 'warn'
  }
  const first = startServerProcess(env)
  t.after(() => { if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL') })
  await waitReady(url, first.child, first.stderr)

  // Four concurrent writers; an id counts as acknowledged once its 201 has arrived.
  const acknowledged: string[] = []
  let killed = false
  const vector = (seed: number): number[] => Array.from({ length: 192 }, (_, j) => Math.sin(seed + j))
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; !killed; i++) {
      try {
        const response = await fetch(`${url}/v1/classifiers`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: `w${w}-${i}`, method: 'centroid', examples: [{ label: 'a', embedding: vector(i) }, { label: 'b', embedding: vector(i + 100) }] })
        })
        if (response.status !== 201) throw new Error(`create answered ${response.status}: ${await response.text()}`)
        acknowledged.push((await response.json() as { id: string }).id)
        if (acknowledged.length >= 40 && !killed) {
          killed = true
          first.child.kill('SIGKILL')
        }
      } catch (error) {
        if (!killed) throw error // after the kill, refused connections and cut responses are expected
      }
    }
  }
  await Promise.all([0, 1, 2, 3].map(writer))
  if (first.child.exitCode === null && first.child.signalCode === null) await new Promise((resolve) => first.child.once('exit', resolve))
  assert.equal(first.child.signalCode, 'SIGKILL')

  const second = startServerProcess(env)
  t.after(() => { if (second.child.exitCode === null && second.child.signalCode === null) second.child.kill('SIGKILL') })
  await waitReady(url, second.child, second.stderr)
  const statuses = await Promise.all(acknowledged.map(async (id) => [id, (await fetch(`${url}/v1/classifiers/${id}`)).status] as const))
  assert.deepEqual(statuses.filter(([, status]) => status !== 200), [])
  assert.ok(acknowledged.length >= 40)
  second.child.kill('SIGTERM')
})

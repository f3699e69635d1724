/**
 * Service processes on one store, as replicas behind a load balancer run: real `src/server.ts`
 * processes on one PostgreSQL (CLMAE_TEST_DATABASE_URL; skipped without it). Also, on any machine:
 * start-up stops, naming the store, when it cannot be reached or (SQLite) is held by another process.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TEST_DATABASE_URL, freshPostgresUrl } from '../helpers/test-database.js'
import { openStoreDatabase } from '../../src/storage/database.js'

const MODELS_DIR = new URL('../../models/', import.meta.url).pathname
const D = 192

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

interface Replica { child: ChildProcess, url: string, stderr: () => string, stdout: () => string }

function startReplica (t: { after: (fn: () => void) => void }, env: Record<string, string>, port: number): Replica {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { ...process.env, CLMAE_HOST: '127.0.0.1', CLMAE_PORT: String(port), CLMAE_MODELS_DIR: MODELS_DIR, CLMAE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  let stdout = '' // the JSON log
  child.stdout?.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  return { child, url: `http://127.0.0.1:${port}`, stderr: () => stderr, stdout: () => stdout }
}

async function waitReady (replica: Replica): Promise<void> {
  for (let i = 0; i < 1800; i++) { // up to 180 s: start-up loads and warms up both bundles, slow on a busy CPU
    if (replica.child.exitCode !== null) throw new Error(`server exited (${replica.child.exitCode}): ${replica.stderr()}`)
    try {
      if ((await fetch(`${replica.url}/readyz`)).status === 200) return
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`server not ready after 180 s: ${replica.stderr()}`)
}

async function exitOf (replica: Replica): Promise<number | null> {
  if (replica.child.exitCode !== null || replica.child.signalCode !== null) return replica.child.exitCode
  return await new Promise((resolve) => replica.child.once('exit', (code) => resolve(code)))
}

function vector (seed: number): number[] {
  return Array.from({ length: D }, (_, j) => Math.sin(seed * 12.9898 + j * 78.233))
}

async function post (url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
}

test('start-up stops, naming the store, when PostgreSQL cannot be reached', { timeout: 240_000 }, async (t) => {
  // info: the effective configuration is logged before the store is opened; the password must not be in it either
  const replica = startReplica(t, { CLMAE_DATABASE_URL: 'postgres://clmae:hunter2-secret@127.0.0.1:1/clmae_store', CLMAE_LOG_LEVEL: 'info' }, await freePort())
  assert.equal(await exitOf(replica), 1)
  assert.match(replica.stderr(), /failed to start: cannot reach PostgreSQL at 127\.0\.0\.1:1\/clmae_store/)
  assert.match(replica.stdout(), /"databaseUrl":"<redacted>"/, 'the configuration was logged')
  assert.doesNotMatch(replica.stderr() + replica.stdout(), /hunter2/)
})

test('start-up stops, naming the file, when the SQLite file is held by another live process', { timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clmae-held-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'clmae.sqlite')
  const holder = await openStoreDatabase({ dbPath: path }) // this test process holds it
  t.after(async () => { await holder.close() })
  const replica = startReplica(t, { CLMAE_DB_PATH: path }, await freePort())
  assert.equal(await exitOf(replica), 1)
  assert.match(replica.stderr(), /failed to start: the SQLite file .*clmae\.sqlite.* is in use by another live process/)
})

test('two replicas on one PostgreSQL: shared classifiers, serialised refits, idempotent retries, no acknowledged write lost to SIGKILL',
  { timeout: 900_000, skip: TEST_DATABASE_URL === '' ? 'needs CLMAE_TEST_DATABASE_URL (npm test starts a PostgreSQL)' : false }, async (t) => {
    const env = { CLMAE_DATABASE_URL: await freshPostgresUrl(t) }
    const a = startReplica(t, env, await freePort())
    const b = startReplica(t, env, await freePort())
    await Promise.all([waitReady(a), waitReady(b)])

    // created on A, predicts on B
    const created = await post(`${a.url}/v1/classifiers`, { method: 'centroid', examples: [0, 1, 2, 3].map((i) => ({ label: `l${i % 2}`, embedding: vector(i) })) })
    const c = await created.json() as { id: string, version: number }
    assert.equal(created.status, 201, JSON.stringify(c))
    const query = { embeddings: [vector(0), vector(1)] }
    const onA = await (await post(`${a.url}/v1/classifiers/${c.id}/predict`, query)).json()
    const onB = await post(`${b.url}/v1/classifiers/${c.id}/predict`, query)
    assert.equal(onB.status, 200)
    assert.deepEqual(await onB.json(), onA)

    // 100 concurrent add-examples alternating A and B, each retried on 409 / 503 until accepted
    let retries = 0
    const addOne = async (i: number): Promise<void> => {
      const target = i % 2 === 0 ? a : b
      for (let attempt = 0; attempt < 50; attempt++) {
        const r = await post(`${target.url}/v1/classifiers/${c.id}/examples`, { examples: [{ label: `l${i % 2}`, embedding: vector(1000 + i) }] })
        if (r.status === 200) return
        if (r.status !== 409 && r.status !== 503) throw new Error(`add ${i} answered ${r.status}: ${await r.text()}`)
        retries++
        await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 50))
      }
      throw new Error(`add ${i} was never accepted`)
    }
    await Promise.all(Array.from({ length: 100 }, async (_, i) => await addOne(i)))
    t.diagnostic(`100 concurrent additions over two replicas: ${retries} retries`)
    const final = await (await fetch(`${b.url}/v1/classifiers/${c.id}`)).json() as { version: number, num_examples: number }
    assert.equal(final.version, 101)
    assert.equal(final.num_examples, 104)
    const exported = await (await fetch(`${a.url}/v1/classifiers/${c.id}/export`)).json() as { examples: { embedding: number[] }[] }
    const firsts = exported.examples.map((e) => Math.fround(e.embedding[0]))
    for (let i = 0; i < 100; i++) {
      const want = Math.fround(vector(1000 + i)[0])
      assert.equal(firsts.filter((v) => v === want).length, 1, `example ${i} is stored exactly once`)
    }

    // an idempotent create retried on the other replica (and sent to both at once) creates one classifier
    const body = { name: 'once', method: 'centroid', examples: [{ label: 'x', embedding: vector(7) }, { label: 'y', embedding: vector(8) }] }
    const [first, second] = await Promise.all([post(`${a.url}/v1/classifiers`, body, { 'idempotency-key': 'once-1' }), post(`${b.url}/v1/classifiers`, body, { 'idempotency-key': 'once-1' })])
    assert.deepEqual([first.status, second.status].filter((s) => s === 201).length >= 1, true, `${first.status} ${second.status}`)
    for (const r of [first, second]) assert.ok(r.status === 201 || r.status === 409, `${r.status}`)
    let retried: Response | undefined
    for (let i = 0; i < 50; i++) {
      retried = await post(`${b.url}/v1/classifiers`, body, { 'idempotency-key': 'once-1' })
      if (retried.status !== 409) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.equal(retried?.status, 201)
    const all = await (await fetch(`${a.url}/v1/classifiers?limit=100`)).json() as { data: { id: string, name: string }[] }
    assert.equal(all.data.filter((x) => x.name === 'once').length, 1)
    assert.equal((await retried?.json() as { id: string }).id, all.data.find((x) => x.name === 'once')?.id)

    // SIGKILL A during a stream of creates: every acknowledged one is there, read through B
    const acknowledged: string[] = []
    let killed = false
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !killed; i++) {
        try {
          const r = await post(`${a.url}/v1/classifiers`, { name: `w${w}-${i}`, method: 'centroid', examples: [{ label: 'a', embedding: vector(i) }, { label: 'b', embedding: vector(i + 100) }] })
          if (r.status !== 201) throw new Error(`create answered ${r.status}: ${await r.text()}`)
          acknowledged.push((await r.json() as { id: string }).id)
          if (acknowledged.length >= 40 && !killed) {
            killed = true
            a.child.kill('SIGKILL')
          }
        } catch (error) {
          if (!killed) throw error // after the kill, refused connections and cut responses are expected
        }
      }
    }
    await Promise.all([0, 1, 2, 3].map(writer))
    await exitOf(a)
    assert.equal(a.child.signalCode, 'SIGKILL')
    const statuses = await Promise.all(acknowledged.map(async (id) => [id, (await fetch(`${b.url}/v1/classifiers/${id}`)).status] as const))
    assert.deepEqual(statuses.filter(([, status]) => status !== 200), [])
    assert.ok(acknowledged.length >= 40)
    b.child.kill('SIGTERM')
    await exitOf(b)
  })

test('one replica on SQLite: every write it acknowledged survives SIGKILL and a restart on the same file',
  { timeout: 600_000, skip: TEST_DATABASE_URL !== '' ? 'the PostgreSQL run covers this with two replicas' : false }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'clmae-kill-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const port = await freePort()
    const env = { CLMAE_DB_PATH: join(dir, 'clmae.sqlite') }
    const first = startReplica(t, env, port)
    await waitReady(first)
    const acknowledged: string[] = []
    let killed = false
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !killed; i++) {
        try {
          const r = await post(`${first.url}/v1/classifiers`, { name: `w${w}-${i}`, method: 'centroid', examples: [{ label: 'a', embedding: vector(i) }, { label: 'b', embedding: vector(i + 100) }] })
          if (r.status !== 201) throw new Error(`create answered ${r.status}: ${await r.text()}`)
          acknowledged.push((await r.json() as { id: string }).id)
          if (acknowledged.length >= 40 && !killed) {
            killed = true
            first.child.kill('SIGKILL')
          }
        } catch (error) {
          if (!killed) throw error
        }
      }
    }
    await Promise.all([0, 1, 2, 3].map(writer))
    await exitOf(first)
    assert.equal(first.child.signalCode, 'SIGKILL')
    const second = startReplica(t, env, port) // the same file: the dead process's lock went with it
    await waitReady(second)
    const statuses = await Promise.all(acknowledged.map(async (id) => [id, (await fetch(`${second.url}/v1/classifiers/${id}`)).status] as const))
    assert.deepEqual(statuses.filter(([, status]) => status !== 200), [])
    second.child.kill('SIGTERM')
    await exitOf(second)
  })

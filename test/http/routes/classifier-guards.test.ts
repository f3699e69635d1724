/**
 * The classifier routes' guards, each attacked (on SQLite, and on PostgreSQL when
 * CLMAE_TEST_DATABASE_URL is set): Idempotency-Key (replay, reuse, in progress, scope, release on
 * failure), the add-examples / re-embed race in both orders, the fit queue, the fit deadline, a client
 * that goes away during a fit, and a store lost while the service runs.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import sharp from 'sharp'
import pg from 'pg'
import { BASELINE_MODEL, DEFAULT_MODEL, postJson, startServer, type TestServer } from '../../helpers/server.js'
import { expectProblem } from '../../helpers/problem.js'
import { TEST_DATABASE_URL, TEST_DIALECT } from '../../helpers/test-database.js'
import { FitRunner } from '../../../src/fewshot/fit-runner.js'

const D = 192

function vector (seed: number, label: number): number[] {
  return Array.from({ length: D }, (_, j) => Math.sin(seed * 31 + j * 7) * 0.5 + (j % 8 === label ? 1 : 0))
}

function examples (n: number, classes: number, from = 0): { label: string, embedding: number[] }[] {
  return Array.from({ length: n }, (_, i) => ({ label: `c${(from + i) % classes}`, embedding: vector(from + i, (from + i) % classes) }))
}

async function image (shade: number): Promise<string> {
  const raw = Buffer.alloc(64 * 64 * 3, shade)
  for (let i = 0; i < raw.length; i += 7) raw[i] = (shade * 3 + i) % 256
  return `data:image/png;base64,${(await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer()).toString('base64')}`
}

/** Holds the next embedding run of `model` until release(); `entered` resolves when it is held. */
function gateNextRun (server: TestServer, modelId: string): { entered: Promise<void>, release: () => void } {
  const model = server.app.models.get(modelId)
  const run = model.run.bind(model)
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let entered!: () => void
  const inside = new Promise<void>((resolve) => { entered = resolve })
  model.run = async (...args: Parameters<typeof run>) => {
    model.run = run // only this one call waits
    entered()
    await gate
    return await run(...args)
  }
  return { entered: inside, release }
}

async function count (server: TestServer): Promise<number> {
  const page = await (await fetch(`${server.url}/v1/classifiers?limit=100`)).json() as { data: unknown[] }
  return page.data.length
}

/**
 * Holds the next fit of any FitRunner (only that one) until `release()`: `before` it starts or `after` it
 * finished, its answer not yet returned. `reached` resolves when the fit gets there.
 */
function holdNextFit (t: TestContext, at: 'before' | 'after'): { reached: Promise<void>, release: () => void } {
  const fit = FitRunner.prototype.fit
  t.after(() => { FitRunner.prototype.fit = fit })
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let arrive!: () => void
  const reached = new Promise<void>((resolve) => { arrive = resolve })
  FitRunner.prototype.fit = async function (this: FitRunner, ...args: Parameters<typeof fit>) {
    FitRunner.prototype.fit = fit // only this one fit is held
    if (at === 'before') { arrive(); await gate }
    const result = await fit.apply(this, args)
    if (at === 'after') { arrive(); await gate }
    return result
  }
  return { reached, release }
}

test(`[${TEST_DIALECT}] Idempotency-Key on create: replay, reuse with another body, scope per API key, released on failure`, async (t) => {
  const server = await startServer(t)
  const url = `${server.url}/v1/classifiers`
  const body = { method: 'centroid', examples: examples(6, 2) }
  const first = await postJson(url, body, { 'idempotency-key': 'k-1' })
  const created = await first.json() as Record<string, unknown>
  assert.equal(first.status, 201, JSON.stringify(created))
  const replay = await postJson(url, body, { 'idempotency-key': 'k-1' })
  assert.equal(replay.status, 201)
  assert.equal(replay.headers.get('idempotent-replayed'), 'true')
  assert.deepEqual(await replay.json(), created)
  assert.equal(await count(server), 1, 'the replay created nothing')

  await expectProblem(await postJson(url, { ...body, name: 'other' }, { 'idempotency-key': 'k-1' }), 422, 'IDEMPOTENCY_KEY_REUSED')
  // another caller (API key) has its own key space
  const other = await postJson(url, body, { 'idempotency-key': 'k-1', 'x-api-key': 'someone-else' })
  assert.equal(other.status, 201)
  assert.notEqual((await other.json() as { id: string }).id, created.id)

  // a request that fails after claiming the key releases it: the same request again is worked on again
  const oneClass = { method: 'centroid', examples: examples(4, 1) }
  await expectProblem(await postJson(url, oneClass, { 'idempotency-key': 'k-2' }), 422, 'CLASSIFIER_TOO_FEW_CLASSES')
  await expectProblem(await postJson(url, oneClass, { 'idempotency-key': 'k-2' }), 422, 'CLASSIFIER_TOO_FEW_CLASSES')
  assert.equal(await count(server), 2)
})

test(`[${TEST_DIALECT}] Idempotency-Key: a duplicate while the first runs is 409 IDEMPOTENCY_KEY_IN_PROGRESS; add-examples replays`, async (t) => {
  const server = await startServer(t)
  const url = `${server.url}/v1/classifiers`
  const body = { method: 'centroid', examples: [{ label: 'a', input: await image(20) }, { label: 'b', input: await image(220) }] }
  const gate = gateNextRun(server, DEFAULT_MODEL)
  const slow = postJson(url, body, { 'idempotency-key': 'k-3' })
  await gate.entered
  await expectProblem(await postJson(url, body, { 'idempotency-key': 'k-3' }), 409, 'IDEMPOTENCY_KEY_IN_PROGRESS')
  gate.release()
  const created = await (await slow).json() as { id: string, version: number }
  assert.equal((await postJson(url, body, { 'idempotency-key': 'k-3' })).status, 201)
  assert.equal(await count(server), 1)

  const add = { examples: [{ label: 'a', embedding: (await (await fetch(`${url}/${created.id}/export`)).json() as { examples: { embedding: number[] }[] }).examples[0].embedding }] }
  const added = await postJson(`${url}/${created.id}/examples`, add, { 'idempotency-key': 'k-4' })
  const addedBody = await added.json() as { version: number }
  assert.equal(added.status, 200, JSON.stringify(addedBody))
  assert.equal(addedBody.version, 2)
  const again = await postJson(`${url}/${created.id}/examples`, add, { 'idempotency-key': 'k-4' })
  assert.deepEqual(await again.json(), addedBody)
  const final = await (await fetch(`${url}/${created.id}`)).json() as { version: number, num_examples: number }
  assert.deepEqual([final.version, final.num_examples], [2, 3], 'the retry added nothing')
})

test(`[${TEST_DIALECT}] Idempotency-Key on add-examples: a retry of an accepted request is replayed, not refused by the examples it added`, async (t) => {
  const server = await startServer(t, { classifierMaxExamples: 6, classifierMaxClasses: 2 })
  const url = `${server.url}/v1/classifiers`
  const created = await (await postJson(url, { method: 'centroid', examples: examples(4, 2) })).json() as { id: string }
  const add = { examples: examples(2, 2, 10) } // the classifier is full after this
  const first = await postJson(`${url}/${created.id}/examples`, add, { 'idempotency-key': 'fill' })
  const firstBody = await first.json() as { version: number, num_examples: number }
  assert.equal(first.status, 200, JSON.stringify(firstBody))
  assert.equal(firstBody.num_examples, 6)
  const retry = await postJson(`${url}/${created.id}/examples`, add, { 'idempotency-key': 'fill' })
  const retryBody = await retry.json() as Record<string, unknown>
  assert.equal(retry.status, 200, JSON.stringify(retryBody))
  assert.equal(retry.headers.get('idempotent-replayed'), 'true')
  assert.deepEqual(retryBody, firstBody)
  // without the key the same request is new work, and the classifier is full
  await expectProblem(await postJson(`${url}/${created.id}/examples`, add), 422, 'CLASSIFIER_FULL')
})

test(`[${TEST_DIALECT}] numbers finite as doubles but not as float32 (the stored form) are refused, never stored as Infinity or 0`, async (t) => {
  const server = await startServer(t)
  const url = `${server.url}/v1/classifiers`
  const huge = 1e39 // > 3.4e38, the largest float32
  const withHuge = examples(6, 2).map((e, i) => i === 0 ? { ...e, embedding: e.embedding.map((v, j) => j === 0 ? huge : v) } : e)
  await expectProblem(await postJson(url, { method: 'centroid', examples: withHuge }), 422, 'CLASSIFIER_EMBEDDING_INVALID')
  const created = await (await postJson(url, { method: 'logreg', examples: examples(8, 2) })).json() as { id: string }
  await expectProblem(await postJson(`${url}/${created.id}/examples`, { examples: withHuge.slice(0, 1) }), 422, 'CLASSIFIER_EMBEDDING_INVALID')
  const exported = await (await fetch(`${url}/${created.id}/export`)).json() as { probe: { weights: number[][], std: number[] } }
  const { weights, std } = exported.probe
  const hugeWeight = { ...exported, probe: { ...exported.probe, weights: weights.map((row, k) => k === 0 ? [huge, ...row.slice(1)] : row) } }
  await expectProblem(await postJson(`${url}/import`, hugeWeight), 422, 'CLASSIFIER_IMPORT_INVALID')
  const tinyStd = { ...exported, probe: { ...exported.probe, std: [1e-46, ...std.slice(1)] } } // > 0 as a double, 0 as float32
  await expectProblem(await postJson(`${url}/import`, tinyStd), 422, 'CLASSIFIER_IMPORT_INVALID')
  assert.equal(await count(server), 1)
})

test(`[${TEST_DIALECT}] refits waiting on other replicas' row locks cannot take every connection: beyond the fit queue they are refused, predicts still answer`,
  { skip: TEST_DIALECT === 'sqlite' ? 'PostgreSQL only: a SQLite refit holds no connection while it waits' : false }, async (t) => {
    await assert.rejects(startServer(t, { databasePoolSize: 2, classifierFitQueue: 1 }), /CLMAE_DATABASE_POOL_SIZE to at least 4/, 'a pool the refits could fill is refused at start-up')
    // 2 refit sections (the running fit and 1 queued) in a pool of 4: 2 connections stay for reads
    const server = await startServer(t, { databasePoolSize: 4, classifierFitQueue: 1 })
    const url = `${server.url}/v1/classifiers`
    const ids: string[] = []
    for (let i = 0; i < 4; i++) ids.push((await (await postJson(url, { method: 'centroid', examples: examples(4, 2) })).json() as { id: string }).id)
    // another replica's refits, as the store sees them: the four rows locked by one transaction
    const name = new URL(server.config.databaseUrl).pathname.slice(1)
    const other = new pg.Client({ connectionString: server.config.databaseUrl })
    const monitor = new pg.Client({ connectionString: TEST_DATABASE_URL })
    for (const client of [other, monitor]) {
      client.on('error', () => {}) // the test database is dropped (its sessions terminated) after the test
      await client.connect()
      t.after(async () => { await client.end().catch(() => {}) })
    }
    await other.query('BEGIN')
    await other.query('SELECT id FROM classifiers WHERE id = ANY($1) FOR UPDATE', [ids])
    const waitingOnLocks = async (n: number): Promise<void> => {
      for (let i = 0; i < 200; i++) {
        const r = await monitor.query("SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", [name])
        if (r.rows[0].n === n) return
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      throw new Error(`never ${n} refits waiting on the row locks`)
    }
    const add = async (id: string): Promise<Response> => await postJson(`${url}/${id}/examples`, { examples: examples(1, 2, 50) })
    const blocked = [add(ids[0]), add(ids[1])]
    await waitingOnLocks(2)
    const within = async (p: Promise<Response>): Promise<Response | 'still waiting'> => await Promise.race([p, new Promise<'still waiting'>((resolve) => setTimeout(() => resolve('still waiting'), 10_000))])
    for (const id of ids.slice(2)) {
      const refused = await within(add(id))
      assert.ok(refused !== 'still waiting', 'a third refit section would hold a third connection')
      await expectProblem(refused, 503, 'CLASSIFIER_FIT_QUEUE_FULL')
      assert.equal(refused.headers.get('retry-after'), String(server.config.retryAfterSeconds))
    }
    const predicted = await within(postJson(`${url}/${ids[3]}/predict`, { embeddings: [vector(1, 0)] }))
    assert.ok(predicted !== 'still waiting' && predicted.status === 200, 'predicts get a connection')
    assert.deepEqual(await (await fetch(`${server.url}/readyz`)).json(), { status: 'ready', database: 'up' })
    await other.query('COMMIT')
    for (const r of await Promise.all(blocked)) assert.equal(r.status, 200)
  })

test(`[${TEST_DIALECT}] a delete during an add-examples fit: the classifier ends deleted, with no examples left behind`, async (t) => {
  const server = await startServer(t)
  const url = `${server.url}/v1/classifiers`
  const created = await (await postJson(url, { method: 'centroid', examples: examples(4, 2) })).json() as { id: string }
  // hold the next fit (add-examples is then inside its refit section: on PostgreSQL holding the row lock)
  const { reached: inside, release } = holdNextFit(t, 'before')
  const adding = postJson(`${url}/${created.id}/examples`, { examples: examples(2, 2, 20) })
  await inside
  const deleting = fetch(`${url}/${created.id}`, { method: 'DELETE' })
  if (TEST_DIALECT === 'sqlite') {
    assert.equal((await deleting).status, 204, 'SQLite: the delete does not wait for the fit')
    release()
    await expectProblem(await adding, 404, 'CLASSIFIER_NOT_FOUND') // its write finds the classifier gone: nothing stored
  } else {
    release() // PostgreSQL: the delete waits for the row lock; the addition commits first, then the delete
    assert.equal((await adding).status, 200)
    assert.equal((await deleting).status, 204)
  }
  await expectProblem(await fetch(`${url}/${created.id}`), 404, 'CLASSIFIER_NOT_FOUND')
  const raw = server.app.classifierStore.raw
  assert.ok(raw !== undefined)
  const left = await raw.db.selectFrom('examples').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
  assert.equal(Number(left.n), 0, 'no examples outlive their classifier')
  assert.equal(await count(server), 0)
})

test(`[${TEST_DIALECT}] add-examples vs re-embed: 409 CLASSIFIER_CONFLICT in both orders, encoders never mixed`, async (t) => {
  const server = await startServer(t)
  const url = `${server.url}/v1/classifiers`
  const images = [{ label: 'a', input: await image(10) }, { label: 'a', input: await image(30) }, { label: 'b', input: await image(200) }, { label: 'b', input: await image(240) }]

  // 1. add-examples embeds with the pinned model; a re-embed to another model commits meanwhile
  const one = await (await postJson(url, { method: 'centroid', keep_images: true, examples: images })).json() as { id: string }
  const gate = gateNextRun(server, DEFAULT_MODEL)
  const adding = postJson(`${url}/${one.id}/examples`, { examples: [{ label: 'a', input: await image(50) }] })
  await gate.entered
  const reembedded = await postJson(`${url}/${one.id}/reembed`, { model: BASELINE_MODEL })
  assert.equal(reembedded.status, 200, await reembedded.clone().text())
  gate.release()
  await expectProblem(await adding, 409, 'CLASSIFIER_CONFLICT')
  const afterOne = await (await fetch(`${url}/${one.id}`)).json() as { version: number, num_examples: number, model: string }
  assert.deepEqual([afterOne.version, afterOne.num_examples, afterOne.model], [2, 4, BASELINE_MODEL])

  // 2. re-embed reads and embeds the stored images; examples are added meanwhile
  const two = await (await postJson(url, { method: 'centroid', keep_images: true, examples: images })).json() as { id: string }
  const stored = await (await fetch(`${url}/${two.id}/export`)).json() as { examples: { embedding: number[] }[] }
  const gate2 = gateNextRun(server, BASELINE_MODEL)
  const reembedding = postJson(`${url}/${two.id}/reembed`, { model: BASELINE_MODEL })
  await gate2.entered
  const added = await postJson(`${url}/${two.id}/examples`, { examples: [{ label: 'b', embedding: stored.examples[2].embedding }] })
  assert.equal(added.status, 200)
  gate2.release()
  await expectProblem(await reembedding, 409, 'CLASSIFIER_CONFLICT')
  const afterTwo = await (await fetch(`${url}/${two.id}`)).json() as { version: number, num_examples: number, model: string }
  assert.deepEqual([afterTwo.version, afterTwo.num_examples, afterTwo.model], [2, 5, DEFAULT_MODEL])
})

test(`[${TEST_DIALECT}] fit queue full: 503 CLASSIFIER_FIT_QUEUE_FULL with Retry-After, nothing stored for the refused`, async (t) => {
  const server = await startServer(t, { classifierFitQueue: 0, retryAfterSeconds: 2 })
  const url = `${server.url}/v1/classifiers`
  const big = { method: 'logreg', examples: examples(256, 8) } // cross-validated logreg: about a second or more here
  const answers = await Promise.all([0, 1, 2].map(async () => await postJson(url, big)))
  const statuses = answers.map((r) => r.status)
  const refused = answers.filter((r) => r.status === 503)
  assert.ok(refused.length >= 1 && answers.some((r) => r.status === 201), `statuses ${statuses.join(',')}`)
  for (const r of refused) {
    assert.equal(r.headers.get('retry-after'), '2')
    assert.equal((await r.json() as { code: string }).code, 'CLASSIFIER_FIT_QUEUE_FULL')
  }
  assert.equal(await count(server), answers.filter((r) => r.status === 201).length)
  assert.match(await (await fetch(`${server.url}/metrics`)).text(), /clmae_rejections_total\{reason="CLASSIFIER_FIT_QUEUE_FULL"\} [1-9]/)
})

test(`[${TEST_DIALECT}] a fit past its deadline is 504 CLASSIFIER_FIT_TIMEOUT and stores nothing; the next fit runs`, async (t) => {
  const server = await startServer(t, { classifierFitTimeoutMs: 100 }) // the deadline counts from the worker's start-up, not before
  const url = `${server.url}/v1/classifiers`
  await expectProblem(await postJson(url, { method: 'logreg', examples: examples(256, 8) }), 504, 'CLASSIFIER_FIT_TIMEOUT')
  assert.equal(await count(server), 0)
  assert.equal((await postJson(url, { method: 'centroid', examples: examples(4, 2) })).status, 201, 'a small fit on the restarted worker')
})

test(`[${TEST_DIALECT}] a create whose client goes away during the fit is cancelled and stores nothing`, async (t) => {
  const server = await startServer(t)
  const url = `${server.url}/v1/classifiers`
  const big = (from: number) => JSON.stringify({ method: 'logreg', examples: examples(256, 16, from) })
  // reference: the same fit run to the end
  let started = Date.now()
  assert.equal((await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big(0) })).status, 201)
  const fullFitMs = Date.now() - started
  // the client goes away a quarter of the way into the fit
  const client = new AbortController()
  const request = fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big(1), signal: client.signal }).catch(() => 'aborted')
  await new Promise((resolve) => setTimeout(resolve, fullFitMs / 4))
  client.abort()
  assert.equal(await request, 'aborted')
  // the next fit does not wait for the rest of the abandoned one (fits run one at a time); it only
  // waits for a fresh worker, since stopping a running fit means terminating its worker
  started = Date.now()
  assert.equal((await postJson(url, { method: 'centroid', examples: examples(4, 2) })).status, 201)
  const nextMs = Date.now() - started
  assert.ok(nextMs < fullFitMs * 0.75, `the next create took ${nextMs} ms; the full fit takes ${fullFitMs} ms`)
  assert.equal(await count(server), 2, 'the abandoned create stored nothing')
})

test(`[${TEST_DIALECT}] a client that goes away after its fit finished but before the write: nothing is stored`, async (t) => {
  const server = await startServer(t)
  const url = `${server.url}/v1/classifiers`
  const created = await (await postJson(url, { method: 'centroid', examples: examples(4, 2) })).json() as { id: string }
  // the next fit finishes, then its answer is held until the client has gone
  const { reached: done, release } = holdNextFit(t, 'after')
  const client = new AbortController()
  const adding = fetch(`${url}/${created.id}/examples`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ examples: examples(2, 2, 20) }), signal: client.signal }).catch(() => 'aborted')
  await done
  client.abort()
  assert.equal(await adding, 'aborted')
  await new Promise((resolve) => setTimeout(resolve, 1000)) // the server sees the connection close
  release()
  // the handler runs to the end of its refit section (the store's in-process lock of the classifier is let go)
  const locks = (server.app.classifierStore.store as unknown as { locks: Map<string, unknown> }).locks
  for (let i = 0; i < 500 && locks.size > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(locks.size, 0, 'the abandoned addition finished')
  const after = await (await fetch(`${url}/${created.id}`)).json() as { version: number, num_examples: number }
  assert.deepEqual([after.version, after.num_examples], [1, 4], 'the abandoned addition stored nothing')
})

test(`[${TEST_DIALECT}] a store lost while the service runs: classifier routes 503 DATABASE_UNAVAILABLE, embeddings still 200, /readyz and the metric say so`, async (t) => {
  const server = await startServer(t, { databaseCheckIntervalMs: 200, retryAfterSeconds: 3 })
  const url = `${server.url}/v1/classifiers`
  const created = await (await postJson(url, { method: 'centroid', examples: examples(4, 2) })).json() as { id: string }
  assert.deepEqual(await (await fetch(`${server.url}/readyz`)).json(), { status: 'ready', database: 'up' })
  const raw = server.app.classifierStore.raw
  assert.ok(raw !== undefined)
  let restore = async (): Promise<void> => {}
  if (raw.sqlite !== undefined) {
    raw.sqlite.close() // the file handle is gone, as after an I/O failure
  } else {
    const name = new URL(server.config.databaseUrl).pathname.slice(1)
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL })
    await admin.connect()
    await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`)
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name])
    restore = async () => { await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`); await admin.end() }
  }
  const refused = await fetch(`${url}/${created.id}`)
  const problem = await expectProblem(refused, 503, 'DATABASE_UNAVAILABLE')
  assert.equal(refused.headers.get('retry-after'), '3')
  // where the store is (host, database, file) and the driver's message are for the log, not the client
  const where = raw.sqlite !== undefined ? server.config.dbPath : new URL(server.config.databaseUrl).pathname.slice(1)
  assert.ok(!JSON.stringify(problem).includes(where), problem.detail)
  assert.doesNotMatch(JSON.stringify(problem), /127\.0\.0\.1|SQLITE|ECONN|terminat/i)
  await expectProblem(await postJson(`${url}/${created.id}/predict`, { embeddings: [vector(1, 0)] }), 503, 'DATABASE_UNAVAILABLE')
  const embedded = await postJson(`${server.url}/v1/embeddings`, { input: await image(90) })
  assert.equal(embedded.status, 200, 'embeddings do not need the store')
  const ready = await fetch(`${server.url}/readyz`)
  assert.equal(ready.status, 200)
  assert.deepEqual(await ready.json(), { status: 'ready', database: 'unavailable' })
  assert.match(await (await fetch(`${server.url}/metrics`)).text(), /clmae_database_up 0/)
  if (raw.sqlite !== undefined) return
  await restore()
  for (let i = 0; i < 50 && server.app.classifierStore.state !== 'up'; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  assert.equal((await fetch(`${url}/${created.id}`)).status, 200, 'back once the store answers again')
  assert.match(await (await fetch(`${server.url}/metrics`)).text(), /clmae_database_up 1/)
})

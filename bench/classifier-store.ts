/**
 * `npm run bench:classifier-store [-- --examples 5000 --requests 200 --fits 20]`
 *
 * 1. Predict latency (p50 / p95 over `--requests` sequential POST /v1/classifiers/{id}/predict with one
 *    embedding, on the real app over HTTP) for a logreg and a kNN classifier of `--examples` examples
 *    (D = the default model's, 10 labels), with the fitted-probe cache (default size) and without it
 *    (--classifier-cache-bytes 0: every predict decodes the stored float32 probe). The classifiers are
 *    written straight into the store (logreg without cross-validation: the benchmark is about reads).
 * 2. The fit queue under `--fits` concurrent creates, each the largest one request may make under the
 *    default limits (logreg with cross-validated C, classifierMaxExamplesPerRequest examples of
 *    classifierMaxClasses labels: 256 x 20, at D = the model's; larger fits come from add-examples and
 *    re-embed refits, which go through the same queue): how many were accepted (201), refused with 503
 *    CLASSIFIER_FIT_QUEUE_FULL, or stopped at the fit deadline (504), with the default queue bound and deadline.
 * SQLite store in a temporary directory; `--database-url postgres://...` runs both on PostgreSQL.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildApp, warmUpApp } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { fitProbe } from '../src/fewshot/classifiers.js'
import { createMatrix } from '../src/fewshot/matrix.js'

const { values } = parseArgs({ options: {
  examples: { type: 'string', default: '5000' },
  requests: { type: 'string', default: '200' },
  fits: { type: 'string', default: '20' },
  'database-url': { type: 'string', default: '' }
} })
const N = Number(values.examples)
const REQUESTS = Number(values.requests)
const FITS = Number(values.fits)
const dir = mkdtempSync(join(tmpdir(), 'clmae-bench-store-'))
const MODELS_DIR = new URL('../models/', import.meta.url).pathname

function config (overrides: Partial<Config>): Config {
  return loadConfig({ env: {}, argv: [], overrides: { host: '127.0.0.1', port: 0, modelsDir: MODELS_DIR, logLevel: 'warn', dbPath: join(dir, 'bench.sqlite'), databaseUrl: values['database-url'], ...overrides } })
}

async function start (overrides: Partial<Config>) {
  const app = await buildApp(config(overrides), { logger: false })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await warmUpApp(app)
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  return { app, url: `http://127.0.0.1:${address.port}` }
}

// labels: how many the classifier has; each label lifts its own coordinates (separable while labels <= dim)
function vector (i: number, label: number, dim: number, labels: number): number[] {
  return Array.from({ length: dim }, (_, j) => Math.sin(i * 7.1 + j) * 0.5 + (j % labels === label ? 1 : 0))
}

function quantile (sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

async function post (url: string, body: unknown): Promise<Response> {
  return await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
}

// ---- 1. predict latency with and without the probe cache
let first = await start({})
const dim = first.app.models.get(undefined).manifest.dims.embed_dim
const x = createMatrix(N, dim)
const names: string[] = []
const rows: number[][] = []
for (let i = 0; i < N; i++) {
  const row = vector(i, i % 10, dim, 10)
  rows.push(row)
  x.data.set(row, i * dim)
  names.push(`label-${i % 10}`)
}
const model = first.app.models.get(undefined)
const pin = { model: model.id, sha256: model.sha256.encoder as string, pooling: 'mean' as const, normalize: true }
const store = first.app.classifierStore.store
const ids: Record<string, string> = {}
for (const method of ['logreg', 'knn'] as const) {
  const t = performance.now()
  const fit = fitProbe(method, x, names, { crossValidate: false })
  const created = await store.create({ name: `bench-${method}`, method, pin, keepImages: false, dim, refittable: true }, fit,
    rows.map((embedding, i) => ({ label: names[i], embedding })), { maxClassifiers: 1000 })
  ids[method] = created.id
  console.log(`stored a ${N}-example ${method} classifier (D = ${dim}) in ${((performance.now() - t) / 1000).toFixed(1)} s`)
}

async function predictLatency (url: string, id: string): Promise<number[]> {
  const body = { embeddings: [vector(123_457, 3, dim, 10)] }
  for (let i = 0; i < 5; i++) await (await post(`${url}/v1/classifiers/${id}/predict`, body)).arrayBuffer() // warm-up (fills the cache)
  const times: number[] = []
  for (let i = 0; i < REQUESTS; i++) {
    const t = performance.now()
    const r = await post(`${url}/v1/classifiers/${id}/predict`, body)
    await r.arrayBuffer()
    if (r.status !== 200) throw new Error(`predict answered ${r.status}`)
    times.push(performance.now() - t)
  }
  return times.sort((a, b) => a - b)
}

const results: string[] = []
for (const cacheBytes of [first.app.config.classifierCacheBytes, 0]) {
  const server = cacheBytes === first.app.config.classifierCacheBytes ? first : await start({ classifierCacheBytes: 0 })
  for (const method of ['logreg', 'knn'] as const) {
    const times = await predictLatency(server.url, ids[method])
    results.push(`| ${method} | ${N} | ${cacheBytes === 0 ? 'off (0)' : `on (${cacheBytes / 2 ** 20} MiB)`} | ${quantile(times, 0.5).toFixed(2)} | ${quantile(times, 0.95).toFixed(2)} |`)
  }
  await server.app.close()
}
console.log(`\npredict, one embedding per request, ${REQUESTS} sequential requests over HTTP (${values['database-url'] === '' ? 'SQLite' : 'PostgreSQL'}):`)
console.log('| method | examples | probe cache | p50 ms | p95 ms |')
console.log('|---|---|---|---|---|')
for (const line of results) console.log(line)

// ---- 2. the fit queue under concurrent large fits
first = await start({})
const defaults = first.app.config
const fitN = defaults.classifierMaxExamplesPerRequest
const fitK = defaults.classifierMaxClasses
const big = (k: number) => ({ method: 'logreg', examples: Array.from({ length: fitN }, (_, i) => ({ label: `c${i % fitK}`, embedding: vector(k * 1000 + i, i % fitK, dim, fitK) })) })
const t0 = performance.now()
const statuses = await Promise.all(Array.from({ length: FITS }, async (_, k) => {
  const r = await post(`${first.url}/v1/classifiers`, big(k))
  const code = r.status === 201 ? '' : (await r.json() as { code: string }).code
  if (r.status === 201) await r.arrayBuffer()
  return { status: r.status, code, ms: performance.now() - t0 }
}))
const count = (s: number): number => statuses.filter((x) => x.status === s).length
const done = statuses.filter((x) => x.status === 201).map((x) => x.ms).sort((a, b) => a - b)
console.log(`\n${FITS} concurrent creates of a ${fitN} x ${fitK} logreg (D = ${dim}, cross-validated C); fit queue ${defaults.classifierFitQueue}, deadline ${defaults.classifierFitTimeoutMs} ms:`)
console.log('| accepted and completed (201) | refused (503 CLASSIFIER_FIT_QUEUE_FULL) | past the deadline (504) | other | last 201 after s |')
console.log('|---|---|---|---|---|')
console.log(`| ${count(201)} | ${statuses.filter((x) => x.code === 'CLASSIFIER_FIT_QUEUE_FULL').length} | ${count(504)} | ${FITS - count(201) - count(503) - count(504)} | ${((done[done.length - 1] ?? 0) / 1000).toFixed(1)} |`)
console.log(`stored classifiers after: ${await first.app.classifierStore.store.count() - 2} new (= accepted)`)
await first.app.close()
rmSync(dir, { recursive: true, force: true })

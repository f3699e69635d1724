/**
 * `npm run bench:embeddings [-- --seconds 10 --concurrency 1,8,32 --photos DIR -- <server flags>]`
 *
 * Loopback throughput of POST /v1/embeddings against `npm start` (a child process, default config unless
 * server flags follow a second `--`), at each concurrency: images/s and p50/p99 latency, each request one
 * real photo (raw image/jpeg body, 412-1280 px sides, from ../shared/data/photos) that the service decodes,
 * resizes and normalises. In the same run, a bare onnxruntime-node session on the same encoder.onnx is fed
 * ready tensors (the same photos, preprocessed once) at batch sizes 1..32; its best images/s is the
 * reference. Prints a table and the ratio HTTP / bare at the highest concurrency (target >= 0.9).
 * --max-side N shrinks the photos first, which separates the serving stack's cost from the decoding of big JPEGs.
 * --models-dir DIR --model NAME benchmarks another bundle (the server loads only that one).
 */
import { spawn } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import * as ort from 'onnxruntime-node'
import sharp from 'sharp'
import { readBundle } from '../src/bundles/bundle-reader.js'
import { inspectImage } from '../src/imaging/decode.js'
import { applyEvalTransform } from '../src/imaging/eval-transform.js'

const ROOT = new URL('..', import.meta.url).pathname
const argv = process.argv.slice(2)
const split = argv.indexOf('--')
const benchArgs = split === -1 ? argv : argv.slice(0, split)
const serverArgs = split === -1 ? [] : argv.slice(split + 1)
function arg (name: string, fallback: string): string {
  const i = benchArgs.indexOf(`--${name}`)
  return i === -1 ? fallback : benchArgs[i + 1]
}
const SECONDS = Number(arg('seconds', '10'))
const CONCURRENCY = arg('concurrency', '1,8,32').split(',').map(Number)
const PHOTOS = resolve(ROOT, arg('photos', '../shared/data/photos'))
const MODEL = arg('model', 'clmae-vit-mini-p8-64')
// --models-dir DIR: bundles from elsewhere (e.g. an untrained ViT-S/16 export, to see a heavier graph); the server gets it too
const MODELS_DIR = resolve(ROOT, arg('models-dir', 'models'))
const BATCHES = arg('bare-batches', '1,2,4,8,16,32').split(',').map(Number)
// --max-side N: shrink the photos once, before the run (JPEG q90), to measure the serving stack without big decodes
const MAX_SIDE = Number(arg('max-side', '0'))

let photos = readdirSync(PHOTOS).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().map((f) => readFileSync(join(PHOTOS, f)))
if (photos.length === 0) throw new Error(`no photos in ${PHOTOS}`)
if (MAX_SIDE > 0) photos = await Promise.all(photos.map((p) => sharp(p).resize(MAX_SIDE, MAX_SIDE, { fit: 'inside' }).jpeg({ quality: 90 }).toBuffer()))

function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

async function freePort (): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })
}

async function httpLevel (url: string, concurrency: number): Promise<{ imagesPerSecond: number, p50: number, p99: number, errors: number }> {
  const latencies: number[] = []
  let errors = 0
  let next = 0
  const end = performance.now() + SECONDS * 1000
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const body = photos[next++ % photos.length]
      const start = performance.now()
      const response = await fetch(`${url}/v1/embeddings?model=${MODEL}`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body })
      await response.arrayBuffer()
      if (response.status === 200) latencies.push(performance.now() - start)
      else errors++
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  const elapsed = (performance.now() - t0) / 1000
  latencies.sort((a, b) => a - b)
  return { imagesPerSecond: latencies.length / elapsed, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), errors }
}

async function bareSession (): Promise<Array<{ batch: number, imagesPerSecond: number }>> {
  const bundle = await readBundle(join(MODELS_DIR, MODEL))
  const m = bundle.manifest
  const limits = { maxImageBytes: 1e9, maxImagePixels: 1e9, minImageSide: 1, allowedFormats: ['jpeg', 'png'] }
  const S = m.eval_transform.center_crop
  const L = m.num_patches
  const ready = await Promise.all(photos.map(async (p) => (await applyEvalTransform(await inspectImage(p, limits), m.eval_transform)).pixels))
  // the same session options as the service (src/inference/onnx-backend.ts)
  const session = await ort.InferenceSession.create(bundle.graphPaths.encoder!, { graphOptimizationLevel: 'all', executionProviders: ['cpu'], extra: { 'session.intra_op.allow_spinning': '0' } })
  const out: Array<{ batch: number, imagesPerSecond: number }> = []
  for (const batch of BATCHES) {
    const images = new Float32Array(batch * 3 * S * S)
    for (let n = 0; n < batch; n++) images.set(ready[n % ready.length], n * 3 * S * S)
    const ids = BigInt64Array.from({ length: batch * L }, (_, i) => BigInt(i % L))
    const feeds = { images: new ort.Tensor('float32', images, [batch, 3, S, S]), ids_keep: new ort.Tensor('int64', ids, [batch, L]) }
    await session.run(feeds) // warm-up for this shape
    let count = 0
    const t0 = performance.now()
    const end = t0 + Math.min(SECONDS, 5) * 1000
    while (performance.now() < end) { await session.run(feeds); count += batch }
    out.push({ batch, imagesPerSecond: count / ((performance.now() - t0) / 1000) })
  }
  await session.release()
  return out
}

async function main (): Promise<void> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts', '--port', String(port), '--log-level', 'warn', '--models-dir', MODELS_DIR, '--models', MODEL, '--default-model', MODEL, ...serverArgs], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] })
  const url = `http://127.0.0.1:${port}`
  try {
    for (let i = 0; ; i++) {
      try { if ((await fetch(`${url}/readyz`)).status === 200) break } catch {}
      if (i > 600) throw new Error('server not ready after 60 s')
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const info = await (await fetch(`${url}/v1/models`)).json() as { data: Array<{ id: string, batching: unknown, execution_provider: string }> }
    console.log(`# ${photos.length} photos from ${PHOTOS}${MAX_SIDE > 0 ? ` shrunk to a longer side of ${MAX_SIDE} px` : ''}, mean ${Math.round(photos.reduce((a, p) => a + p.length, 0) / photos.length / 1024)} KiB; model ${MODEL}; server flags: ${serverArgs.join(' ') || '(defaults)'}; ${SECONDS}s per level`)
    console.log(`# batching ${JSON.stringify(info.data.find((m) => m.id === MODEL)?.batching)}, execution provider ${info.data[0].execution_provider}`)
    await httpLevel(url, 4) // warm the connection pool and JIT
    const rows: Array<{ concurrency: number, imagesPerSecond: number, p50: number, p99: number, errors: number }> = []
    for (const c of CONCURRENCY) {
      const r = await httpLevel(url, c)
      rows.push({ concurrency: c, ...r })
      console.log(`HTTP  concurrency ${String(c).padStart(3)}: ${r.imagesPerSecond.toFixed(1).padStart(7)} images/s  p50 ${r.p50.toFixed(1)} ms  p99 ${r.p99.toFixed(1)} ms  errors ${r.errors}`)
    }
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
    const bare = await bareSession()
    for (const b of bare) console.log(`bare  batch ${String(b.batch).padStart(3)}: ${b.imagesPerSecond.toFixed(1).padStart(7)} images/s (ready tensors)`)
    const best = bare.reduce((a, b) => (b.imagesPerSecond > a.imagesPerSecond ? b : a))
    const top = rows[rows.length - 1]
    console.log(`ratio HTTP (concurrency ${top.concurrency}) / bare (batch ${best.batch}): ${(top.imagesPerSecond / best.imagesPerSecond).toFixed(3)}  (target >= 0.9)`)
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM')
  }
}

await main()

/**
 * `npm run bench:embeddings [-- --seconds 10 --concurrency 1,8,32 --photos DIR -- <server flags>]`
 *
 * In one run, on the 30 photos of ../shared/data/photos (412-1280 px JPEGs):
 * 1. HTTP: POST /v1/embeddings against the server (a child process, default config unless server flags
 *    follow a second `--`), each request one photo, as a raw image/jpeg body and as multipart, at each
 *    concurrency: images/s, p50/p99 latency, and the CPU seconds of this load generator;
 * 2. the in-process pipeline: the server's own modules (buildApp: decode admission, eval transform,
 *    batcher, onnxruntime) with the same settings, 32 images in flight, no HTTP;
 * 3. decode-only (decode + eval transform, 32 in flight) and encoder-only (a bare onnxruntime session on
 *    ready tensors, batch 1..32; the best batch) images/s.
 * Any answer other than 200 fails the run. Goal (issue 11): multipart HTTP at concurrency 32 >= 0.85 x the
 * in-process pipeline, with p99 <= 1 s.
 * --max-side N shrinks the photos first, which separates the serving stack's cost from the decoding of big JPEGs.
 * --models-dir DIR --model NAME benchmarks another bundle (the server loads only that one).
 */
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, resolve } from 'node:path'
import sharp from 'sharp'
import { bareThroughput, encoderFeeds, readPhotos, type Bare } from './encoder-feeds.js'
import { ROOT, benchCommandLine, keepAliveAgent, percentile, post, startServerChild } from './server-child.js'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { embedImages } from '../src/features/embed.js'
import { inspectImage } from '../src/imaging/decode.js'
import { applyEvalTransform } from '../src/imaging/eval-transform.js'

const { arg, serverArgs } = benchCommandLine()
const SECONDS = Number(arg('seconds', '10'))
const CONCURRENCY = arg('concurrency', '1,8,32').split(',').map(Number)
const PHOTOS = resolve(ROOT, arg('photos', '../shared/data/photos'))
const MODEL = arg('model', 'clmae-vit-mini-p8-64')
// --models-dir DIR: bundles from elsewhere (e.g. an untrained ViT-S/16 export, to see a heavier graph); the server gets it too
const MODELS_DIR = resolve(ROOT, arg('models-dir', 'models'))
const BATCHES = arg('bare-batches', '1,2,4,8,16,32').split(',').map(Number)
// --max-side N: shrink the photos once, before the run (JPEG q90), to measure the serving stack without big decodes
const MAX_SIDE = Number(arg('max-side', '0'))

let photos = readPhotos(PHOTOS)
if (MAX_SIDE > 0) photos = await Promise.all(photos.map((p) => sharp(p).resize(MAX_SIDE, MAX_SIDE, { fit: 'inside' }).jpeg({ quality: 90 }).toBuffer()))

interface Level { imagesPerSecond: number, p50: number, p99: number, errors: number, clientCpuSeconds: number }

/** Runs `concurrency` loops of `once` for SECONDS; every non-200 is counted (and fails the run). */
async function level (concurrency: number, seconds: number, once: (i: number) => Promise<number>): Promise<Level> {
  const latencies: number[] = []
  let errors = 0
  let next = 0
  const end = performance.now() + seconds * 1000
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const start = performance.now()
      const status = await once(next++)
      if (status === 200) latencies.push(performance.now() - start)
      else { errors++; if (errors === 1) console.error(`a request answered ${status}`) }
    }
  }
  const cpu = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  const elapsed = (performance.now() - t0) / 1000
  const used = process.cpuUsage(cpu)
  latencies.sort((a, b) => a - b)
  return { imagesPerSecond: latencies.length / elapsed, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), errors, clientCpuSeconds: (used.user + used.system) / 1e6 }
}

type Form = 'raw' | 'multipart'

/**
 * Each photo's multipart body, encoded once before the run (as a load generator replaying recorded
 * requests would): encoding it per request costs the client CPU that the server's measurement should
 * not pay for.
 */
const multipartBodies = photos.map((photo) => {
  const boundary = '----clmae-bench-boundary-7MA4YWxkTrZu0gW'
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`)
  return { type: `multipart/form-data; boundary=${boundary}`, body: Buffer.concat([head, photo, Buffer.from(`\r\n--${boundary}--\r\n`)]) }
})

async function httpLevel (url: string, concurrency: number, form: Form): Promise<Level> {
  const agent = keepAliveAgent(concurrency)
  try {
    return await level(concurrency, SECONDS, async (i) => {
      const photo = photos[i % photos.length]
      const encoded = form === 'raw' ? { type: 'image/jpeg', body: photo } : multipartBodies[i % photos.length]
      return (await post(url, `/v1/embeddings?model=${MODEL}`, encoded.type, encoded.body, agent)).status
    })
  } finally {
    agent.destroy()
  }
}

/** The server's own pipeline without HTTP: buildApp's registry and imaging settings, 32 images in flight. */
async function inProcess (): Promise<Level> {
  const config = loadConfig({ argv: ['--models-dir', MODELS_DIR, '--models', MODEL, '--default-model', MODEL, '--log-level', 'warn', ...serverArgs] })
  const app = await buildApp(config, { logger: false })
  await app.models.warmUp(config.maxBatchSize)
  const model = app.models.get(MODEL)
  try {
    const run = async (i: number): Promise<number> => {
      await embedImages(model, [photos[i % photos.length]], config, { pooling: 'mean', normalize: true, includePatchTokens: false }, {}, app.metrics)
      return 200
    }
    await level(8, 1, run) // warm-up
    return await level(32, SECONDS, run)
  } finally {
    await app.close()
  }
}

/** Decode + eval transform only (the server's modules and settings), 32 in flight. */
async function decodeOnly (): Promise<Level> {
  const config = loadConfig({ argv: ['--models-dir', MODELS_DIR, '--models', MODEL, '--default-model', MODEL, '--log-level', 'warn', ...serverArgs] })
  const app = await buildApp(config, { logger: false }) // configures the decode admission and transform pool as the server does
  const transform = app.models.get(MODEL).manifest.eval_transform
  try {
    return await level(32, Math.min(SECONDS, 5), async (i) => {
      await applyEvalTransform(await inspectImage(photos[i % photos.length], config), transform)
      return 200
    })
  } finally {
    await app.close()
  }
}

async function bareSession (): Promise<Bare[]> {
  return await bareThroughput(await encoderFeeds(join(MODELS_DIR, MODEL), photos), BATCHES, Math.min(SECONDS, 5))
}

async function main (): Promise<void> {
  const { url, child } = await startServerChild(['--models-dir', MODELS_DIR, '--models', MODEL, '--default-model', MODEL, ...serverArgs])
  try {
    const info = await (await fetch(`${url}/v1/models`)).json() as { data: Array<{ id: string, batching: unknown, execution_provider: string }> }
    console.log(`# ${photos.length} photos from ${PHOTOS}${MAX_SIDE > 0 ? ` shrunk to a longer side of ${MAX_SIDE} px` : ''}, mean ${Math.round(photos.reduce((a, p) => a + p.length, 0) / photos.length / 1024)} KiB; model ${MODEL}; server flags: ${serverArgs.join(' ') || '(defaults)'}; ${SECONDS}s per level`)
    console.log(`# batching ${JSON.stringify(info.data.find((m) => m.id === MODEL)?.batching)}, execution provider ${info.data[0].execution_provider}`)
    await httpLevel(url, 4, 'raw') // warm the connection pool and JIT
    let errors = 0
    const rows: Array<Level & { concurrency: number, form: Form }> = []
    console.log('| body | concurrency | images/s | p50 ms | p99 ms | load generator CPU s | non-200 |')
    console.log('|---|---|---|---|---|---|---|')
    for (const form of ['raw', 'multipart'] as const) {
      for (const c of CONCURRENCY) {
        const r = await httpLevel(url, c, form)
        errors += r.errors
        rows.push({ concurrency: c, form, ...r })
        console.log(`| ${form === 'raw' ? 'image/jpeg' : 'multipart'} | ${c} | ${r.imagesPerSecond.toFixed(1)} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.clientCpuSeconds.toFixed(1)} of ${SECONDS} | ${r.errors} |`)
      }
    }
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
    const pipeline = await inProcess()
    errors += pipeline.errors
    console.log(`in-process pipeline (32 in flight, the server's modules and settings): ${pipeline.imagesPerSecond.toFixed(1)} images/s, p50 ${pipeline.p50.toFixed(0)} ms, p99 ${pipeline.p99.toFixed(0)} ms`)
    const decode = await decodeOnly()
    console.log(`decode + eval transform only (32 in flight): ${decode.imagesPerSecond.toFixed(1)} images/s`)
    const bare = await bareSession()
    const best = bare.reduce((a, b) => (b.imagesPerSecond > a.imagesPerSecond ? b : a))
    console.log(`encoder only (bare session, ready tensors): ${bare.map((b) => `batch ${b.batch} ${b.imagesPerSecond.toFixed(0)}`).join(', ')} images/s; best batch ${best.batch}`)
    const top = rows.filter((r) => r.form === 'multipart').at(-1)!
    console.log(`ratio multipart HTTP (concurrency ${top.concurrency}) / in-process pipeline: ${(top.imagesPerSecond / pipeline.imagesPerSecond).toFixed(3)} (goal >= 0.85), p99 ${top.p99.toFixed(0)} ms (goal <= 1000)`)
    console.log(`cpu: ${(readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown')}, ${availableParallelism()} cores`)
    if (errors > 0) { console.error(`${errors} answers were not 200: the run fails`); process.exitCode = 1 }
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM')
  }
}

await main()

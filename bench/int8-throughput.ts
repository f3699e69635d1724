/**
 * `npm run bench:int8-throughput [-- --models-dir runs/bench-models --fp32 NAME --int8 NAME --seconds 10 -- <server flags>]`
 *
 * fp32 against int8 (python -m clmae.quantize) of one encoder, in one run, with the CPU flags:
 * 1. bare: a bare onnxruntime-node session on ready tensors (the service's session options), images/s at each
 *    --batches size: batch 1 and the best batch;
 * 2. which kernels ran: one profiled session per model (--profile-runs runs at batch 1), time by op type
 *    (the int8 graph's MatMulIntegerToFloat / DynamicQuantizeLinear / QAttention against fp32 MatMul /
 *    Attention). The MLAS kernel under them follows from the CPU flags: u8s8 VPMADDUBSW on AVX2,
 *    VPDPBUSD with AVX-VNNI or AVX512-VNNI;
 * 3. HTTP: POST /v1/embeddings (one photo per request, raw image/jpeg, --concurrency clients) against one
 *    server child serving both bundles (bench/server-child.ts), images/s and p50/p99 for each.
 * Then the ratios int8 / fp32. Goal (issue 15): int8 >= 1.5x fp32 bare on a ViT-B/16 224.
 *
 * The ViT-B/16 224 bundles (random weights are fine for speed; fidelity is bench/int8-fidelity.ts's job):
 *   cd training && ../.venv/bin/python -m clmae.export --init-only --config vit_base_p16_224 --method mae \
 *     --output ../runs/bench-models/mae-vit-base-p16-224
 *   ../.venv/bin/python -m clmae.quantize --bundle ../runs/bench-models/mae-vit-base-p16-224 \
 *     --output ../runs/bench-models/mae-vit-base-p16-224-int8 --graphs encoder
 * Timing figures need a quiet machine (no training run beside it).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import * as ort from 'onnxruntime-node'
import { ROOT, benchCommandLine, keepAliveAgent, percentile, post, startServerChild } from './server-child.js'
import { cpuLine } from './cpu-flags.js'
import { SESSION_OPTIONS, bareThroughput, encoderFeeds, readPhotos, type Bare } from './encoder-feeds.js'

const { arg, serverArgs } = benchCommandLine()
const SECONDS = Number(arg('seconds', '10'))
const MODELS_DIR = resolve(ROOT, arg('models-dir', 'runs/bench-models'))
const FP32 = arg('fp32', 'mae-vit-base-p16-224')
const INT8 = arg('int8', `${FP32}-int8`)
const BATCHES = arg('batches', '1,2,4,8,16,32').split(',').map(Number)
const CONCURRENCY = Number(arg('concurrency', '8'))
const PROFILE_RUNS = Number(arg('profile-runs', '5'))
const PHOTOS = resolve(ROOT, arg('photos', '../shared/data/photos'))
const photos = readPhotos(PHOTOS)

/** Time per op type over PROFILE_RUNS profiled runs at batch 1 (onnxruntime's own profiler, kernel times). */
async function kernels (name: string): Promise<Array<{ op: string, ms: number, share: number }>> {
  const { path, feeds } = await encoderFeeds(join(MODELS_DIR, name), photos)
  const dir = mkdtempSync(join(tmpdir(), 'clmae-int8-profile-'))
  const session = await ort.InferenceSession.create(path, { ...SESSION_OPTIONS, enableProfiling: true, profileFilePrefix: join(dir, 'profile') })
  try {
    const f = feeds(1)
    for (let i = 0; i < PROFILE_RUNS; i++) await session.run(f)
    session.endProfiling()
  } finally {
    await session.release()
  }
  const file = readdirSync(dir).find((n) => n.endsWith('.json'))
  if (file === undefined) throw new Error(`onnxruntime wrote no profile under ${dir}`)
  const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Array<{ cat: string, name: string, dur: number, args?: { op_name?: string } }>
  rmSync(dir, { recursive: true, force: true })
  const byOp = new Map<string, number>()
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.args?.op_name === undefined) continue
    byOp.set(e.args.op_name, (byOp.get(e.args.op_name) ?? 0) + e.dur)
  }
  const total = [...byOp.values()].reduce((a, b) => a + b, 0)
  return [...byOp].sort((a, b) => b[1] - a[1]).map(([op, us]) => ({ op, ms: us / 1000 / PROFILE_RUNS, share: us / total }))
}

async function http (url: string, model: string): Promise<{ imagesPerSecond: number, p50: number, p99: number, errors: number }> {
  const agent = keepAliveAgent(CONCURRENCY)
  const latencies: number[] = []
  let errors = 0
  let next = 0
  const once = async (): Promise<void> => {
    const start = performance.now()
    const { status } = await post(url, `/v1/embeddings?model=${model}`, 'image/jpeg', photos[next++ % photos.length], agent)
    if (status === 200) latencies.push(performance.now() - start)
    else { errors++; if (errors === 1) console.error(`a request to ${model} answered ${status}`) }
  }
  try {
    for (let i = 0; i < 2 * CONCURRENCY; i++) await once() // warm-up
    latencies.length = 0
    const t0 = performance.now()
    const end = t0 + SECONDS * 1000
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (performance.now() < end) await once() }))
    return { imagesPerSecond: latencies.length / ((performance.now() - t0) / 1000), p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), errors }
  } finally {
    agent.destroy()
  }
}

async function main (): Promise<void> {
  console.log(`# cpu: ${cpuLine()}`)
  console.log(`# onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common}; ${FP32} vs ${INT8} in ${MODELS_DIR}; ${SECONDS} s per level; ${photos.length} photos from ${PHOTOS}`)
  const manifest = JSON.parse(readFileSync(join(MODELS_DIR, INT8, 'manifest.json'), 'utf8'))
  console.log(`# int8: ${JSON.stringify({ method: manifest.quantization?.method, reduce_range: manifest.quantization?.reduce_range, encoder: manifest.quantization?.graphs?.encoder?.quantized_ops })}`)

  const results: Record<string, Bare[]> = {}
  console.log('\n| bundle | ' + BATCHES.map((b) => `batch ${b}`).join(' | ') + ' | best |')
  console.log('|---|' + BATCHES.map(() => '---|').join('') + '---|')
  for (const name of [FP32, INT8]) {
    results[name] = await bareThroughput(await encoderFeeds(join(MODELS_DIR, name), photos), BATCHES, SECONDS)
    const best = results[name].reduce((a, b) => (b.imagesPerSecond > a.imagesPerSecond ? b : a))
    console.log(`| ${name} (bare img/s) | ${results[name].map((r) => r.imagesPerSecond.toFixed(1)).join(' | ')} | ${best.imagesPerSecond.toFixed(1)} (batch ${best.batch}) |`)
  }
  const bestOf = (name: string): Bare => results[name].reduce((a, b) => (b.imagesPerSecond > a.imagesPerSecond ? b : a))
  const ratio1 = results[INT8][0].imagesPerSecond / results[FP32][0].imagesPerSecond
  const ratioBest = bestOf(INT8).imagesPerSecond / bestOf(FP32).imagesPerSecond

  for (const name of [FP32, INT8]) {
    const ops = await kernels(name)
    console.log(`\nkernels of ${name} (batch 1, ${PROFILE_RUNS} profiled runs; ms per run, share of kernel time):`)
    console.log(ops.slice(0, 8).map((o) => `  ${o.op.padEnd(28)} ${o.ms.toFixed(2).padStart(9)} ms  ${(100 * o.share).toFixed(1).padStart(5)}%`).join('\n'))
  }

  // two ViT-B bundles load and warm up (both graphs, batch 1 and the max batch) before /readyz answers
  const { url, child, readyMs } = await startServerChild(['--models-dir', MODELS_DIR, '--models', `${FP32},${INT8}`, '--default-model', FP32, ...serverArgs], { readyTimeoutMs: 600_000 })
  console.log(`\n# server child ready in ${(readyMs / 1000).toFixed(1)} s`)
  let errors = 0
  const httpRows: Record<string, number> = {}
  try {
    console.log(`\n| bundle | HTTP img/s at concurrency ${CONCURRENCY} | p50 ms | p99 ms | non-200 |`)
    console.log('|---|---|---|---|---|')
    for (const name of [FP32, INT8]) {
      const r = await http(url, name)
      errors += r.errors
      httpRows[name] = r.imagesPerSecond
      console.log(`| ${name} | ${r.imagesPerSecond.toFixed(1)} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.errors} |`)
    }
  } finally {
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
  }
  console.log(`\nint8 / fp32: bare batch ${BATCHES[0]} ${ratio1.toFixed(2)}x, bare best ${ratioBest.toFixed(2)}x (goal >= 1.5x), HTTP at concurrency ${CONCURRENCY} ${(httpRows[INT8] / httpRows[FP32]).toFixed(2)}x`)
  if (errors > 0) { console.error(`${errors} answers were not 200: the run fails`); process.exitCode = 1 }
}

await main()

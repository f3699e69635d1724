/**
 * `npm run bench:encoder-ids-keep -- --dir runs/bench-models/encoder-variants-vit-base [--batch 8 --rounds 12 --threads 0]`
 *
 * Issue 15's question: for full (unmasked) embeddings the service feeds the encoder ids_keep = every
 * patch; would a graph without ids_keep (K = L fixed, no gather) run faster? Bare onnxruntime-node
 * sessions, the service's options ('all' level, no spinning), the same batch of the same inputs, the
 * two graphs of training/tools/export_encoder_variants.py (same weights). Runs alternate A B / B A so
 * that a drifting machine load hits both alike; the ratio is the median of adjacent pairs' ratios.
 */
import { parseArgs } from 'node:util'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import * as ort from 'onnxruntime-node'
import { cpuFlags } from '../src/inference/ort-graph-cache.js'
import { percentile } from './server-child.js'

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: 'runs/bench-models/encoder-variants-vit-base' },
    batch: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '12' },
    threads: { type: 'string', default: '0' },
    'image-size': { type: 'string', default: '224' },
    patches: { type: 'string', default: '196' }
  }
})
const n = Number(values.batch)
const s = Number(values['image-size'])
const L = Number(values.patches)
const rounds = Number(values.rounds)
const threads = Number(values.threads)

const options: ort.InferenceSession.SessionOptions = {
  graphOptimizationLevel: 'all',
  executionProviders: ['cpu'],
  ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
  extra: { 'session.intra_op.allow_spinning': '0' }
}
const withIds = await ort.InferenceSession.create(join(values.dir, 'encoder-ids-keep.onnx'), options)
const full = await ort.InferenceSession.create(join(values.dir, 'encoder-full.onnx'), options)

const pixels = new Float32Array(n * 3 * s * s)
for (let i = 0; i < pixels.length; i++) pixels[i] = Math.sin(i * 0.37) * 2
const images = new ort.Tensor('float32', pixels, [n, 3, s, s])
const idsKeep = new ort.Tensor('int64', BigInt64Array.from({ length: n * L }, (_, i) => BigInt(i % L)), [n, L])
const feeds = { A: { images, ids_keep: idsKeep }, B: { images } }
const sessions = { A: withIds, B: full }

async function timed (which: 'A' | 'B'): Promise<{ ms: number, latent: Float32Array }> {
  const start = performance.now()
  const out = await sessions[which].run(feeds[which])
  return { ms: performance.now() - start, latent: out.latent.data as Float32Array }
}

const a0 = await timed('A') // warm-up, and the outputs compared
const b0 = await timed('B')
let maxDiff = 0
for (let i = 0; i < a0.latent.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a0.latent[i] - b0.latent[i]))

const times: Record<'A' | 'B', number[]> = { A: [], B: [] }
const ratios: number[] = []
for (let r = 0; r < rounds; r++) {
  const order: Array<'A' | 'B'> = r % 2 === 0 ? ['A', 'B'] : ['B', 'A']
  const got: Partial<Record<'A' | 'B', number>> = {}
  for (const which of order) { got[which] = (await timed(which)).ms; times[which].push(got[which] as number) }
  ratios.push((got.A as number) / (got.B as number))
}

const median = (v: number[]): number => percentile(v, 0.5)
console.log(`onnxruntime-node ${ort.env.versions.node}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), CPU flags: ${cpuFlags()}`)
console.log(`graphs: ${values.dir}; batch ${n}, ${rounds} alternating rounds, intra-op threads ${threads === 0 ? 'default' : threads}; max |A - B| of the latents ${maxDiff.toExponential(2)}`)
console.log('| graph | median ms per batch | img/s | min ms |')
console.log('|---|---|---|---|')
for (const [which, name] of [['A', 'with ids_keep = every patch (the bundle\'s)'], ['B', 'without ids_keep (K = L fixed)']] as const) {
  console.log(`| ${name} | ${median(times[which]).toFixed(1)} | ${(n / median(times[which]) * 1000).toFixed(2)} | ${Math.min(...times[which]).toFixed(1)} |`)
}
console.log(`time ratio with / without ids_keep, median of adjacent pairs: ${median(ratios).toFixed(3)} (p10 ${percentile(ratios, 0.1).toFixed(3)}, p90 ${percentile(ratios, 0.9).toFixed(3)}); > 1 means the graph without ids_keep is faster`)

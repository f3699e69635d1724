/**
 * The exact transform on worker threads: the same pixels as inline (the same code, on a worker), and
 * a 40-megapixel PNG processed while the event loop keeps ticking: its longest gap stays under a
 * bound that the inline resample (about 0.6 s of one core for 40 MP) cannot meet. The bound is loose on
 * purpose (shared 2-core machines); the inline run is measured in the same test to show it would fail.
 * close() with work in flight settles every job (a job left pending would hold its admission bytes), and
 * a worker that dies fails its job and is replaced.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import sharp from 'sharp'
import { inspectImage } from '../../src/imaging/decode.js'
import { applyEvalTransform, configureImaging } from '../../src/imaging/eval-transform.js'
import type { Worker } from 'node:worker_threads'
import { TransformPool } from '../../src/imaging/transform-pool.js'
import type { EvalTransform } from '../../src/bundles/manifest.js'

const TRANSFORM: EvalTransform = { color_mode: 'RGB', resize_shorter_side: 73, center_crop: 64, interpolation: 'bicubic', antialias: true, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }
const LIMITS = { maxImageBytes: 1e9, maxImagePixels: 40_000_000, minImageSide: 8, allowedFormats: ['png', 'jpeg'] }
after(() => { configureImaging({ resizeBackend: 'pillow' }) })

test('the pool gives exactly the inline transform, and the same coded errors', async () => {
  for (const name of ['gradient.png', 'exif-rotated.jpg', 'animated.gif']) {
    const bytes = readFileSync(new URL(`../fixtures/images/${name}`, import.meta.url))
    const source = await inspectImage(bytes, { ...LIMITS, allowedFormats: ['png', 'jpeg', 'gif'] })
    configureImaging({ resizeBackend: 'pillow' })
    const inline = await applyEvalTransform(source, TRANSFORM)
    configureImaging({ resizeBackend: 'pillow', resampleWorkers: 1 })
    const pooled = await applyEvalTransform(source, TRANSFORM)
    assert.deepEqual(pooled.crop, inline.crop, name)
    assert.deepEqual(pooled.pixels, inline.pixels, name)
  }
  const truncated = readFileSync(new URL('../fixtures/images/truncated.jpg', import.meta.url))
  const source = await inspectImage(truncated, LIMITS)
  await assert.rejects(applyEvalTransform(source, TRANSFORM), (e: { code?: string }) => e.code === 'IMAGE_UNREADABLE')
})

/** Longest gap between event-loop turns while `work` runs (a 2 ms interval timer). */
async function longestGap (work: () => Promise<unknown>): Promise<number> {
  let last = performance.now()
  let longest = 0
  const timer = setInterval(() => { const now = performance.now(); longest = Math.max(longest, now - last); last = now }, 2)
  try { await work() } finally { clearInterval(timer) }
  return Math.max(longest, performance.now() - last)
}

test('a 40 MP PNG is resampled off the event loop', async () => {
  const png = await sharp({ create: { width: 8000, height: 5000, channels: 3, background: { r: 120, g: 60, b: 200 } } }).png({ compressionLevel: 1 }).toBuffer()
  const source = await inspectImage(png, LIMITS)
  assert.equal(source.width * source.height, 40_000_000)

  configureImaging({ resizeBackend: 'pillow' }) // inline, for comparison
  const inlineGap = await longestGap(async () => await applyEvalTransform(source, TRANSFORM))
  configureImaging({ resizeBackend: 'pillow', resampleWorkers: 2 })
  const pooledGap = await longestGap(async () => await applyEvalTransform(source, TRANSFORM))
  console.log(`longest event-loop gap, 40 MP PNG: inline resample ${inlineGap.toFixed(0)} ms, worker pool ${pooledGap.toFixed(0)} ms`)
  assert.ok(inlineGap > 300, `the inline resample blocked the loop for only ${inlineGap.toFixed(0)} ms: this test would not catch a regression`)
  assert.ok(pooledGap < 200, `the event loop stalled for ${pooledGap.toFixed(0)} ms while the pool resampled`)
})

test('close() during in-flight work settles every job (the running one finishes, the queued ones are refused)', async (t) => {
  const pool = new TransformPool(1)
  const png = await sharp({ create: { width: 3000, height: 2000, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png({ compressionLevel: 1 }).toBuffer()
  const window = { left: 0, top: 0, width: 64, height: 64 }
  const running = pool.transform(png, 40_000_000, 96, 64, 'bicubic', window)
  const queued = pool.transform(png, 40_000_000, 96, 64, 'bicubic', window)
  await new Promise((resolve) => setTimeout(resolve, 20)) // the first job is on the worker
  let timer: NodeJS.Timeout | undefined
  const never = new Promise((resolve) => { timer = setTimeout(() => resolve('unsettled'), 20_000) })
  t.after(() => clearTimeout(timer))
  const outcome = async (p: Promise<unknown>): Promise<string> => await Promise.race([p.then(() => 'resolved', () => 'rejected'), never]) as string
  const outcomes = [outcome(running), outcome(queued), outcome(pool.close())]
  assert.deepEqual(await Promise.all(outcomes), ['resolved', 'rejected', 'resolved'])
  assert.equal(pool.load, 0)
})

test('a worker that dies fails its job (no hang), and the pool starts another for the next one', async (t) => {
  const pool = new TransformPool(1)
  t.after(async () => await pool.close())
  const png = await sharp({ create: { width: 8000, height: 5000, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png({ compressionLevel: 1 }).toBuffer()
  const window = { left: 0, top: 0, width: 64, height: 64 }
  const job = pool.transform(png, 40_000_000, 115, 73, 'bicubic', window)
  await new Promise((resolve) => setTimeout(resolve, 50)) // the job is on the worker (a 40 MP decode takes far longer)
  const [worker] = [...(pool as unknown as { busy: Map<Worker, unknown> }).busy.keys()]
  assert.ok(worker !== undefined, 'the job is running')
  await worker.terminate() // as a crash looks from here (an uncaught error or an OOM ends the worker the same way)
  await assert.rejects(job, /transform worker exited/)
  const next = await pool.transform(png.subarray(0), 40_000_000, 115, 73, 'bicubic', window)
  assert.deepEqual([next.width, next.height], [64, 64])
  assert.equal(pool.load, 0)
})

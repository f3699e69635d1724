/**
 * Mask maps: summary figures on known inputs, and keep scores of the real clmae bundle equal to the reference
 * outputs written by training (same input tensors, matched by sha256) within the reference's tolerance (1e-4).
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { summarizeKeepScores, keepScoresOf, computeMaskMap } from '../../src/features/mask-map.js'
import { ApiError } from '../../src/errors.js'
import { decodeF32, loadRegistry, maxAbsDiff, referenceFor } from './reference.js'

const TOLERANCE = 1e-4

test('summary of uniform scores: zero spread, maximal entropy, top decile holds its share of patches', () => {
  const s = summarizeKeepScores(new Float32Array(64).fill(0.25))
  assert.equal(s.mean, 0.25)
  assert.equal(s.std, 0)
  assert.ok(Math.abs(s.entropy_bits - 6) < 1e-12) // log2(64)
  assert.ok(Math.abs(s.top_decile_share - 7 / 64) < 1e-12) // ceil(64 / 10) = 7 patches
})

test('summary of a peaked map: low entropy, top decile holds most of the mass', () => {
  const scores = new Float32Array(64).fill(0.001)
  scores[5] = 0.999
  const s = summarizeKeepScores(scores)
  assert.ok(Math.abs(s.min - 0.001) < 1e-6 && Math.abs(s.max - 0.999) < 1e-6)
  assert.ok(s.entropy_bits < 1, `entropy ${s.entropy_bits}`)
  assert.ok(s.top_decile_share > 0.9)
})

const registry = await loadRegistry()
after(async () => { await registry.close() })

test('keep scores equal the reference outputs (same tensors, sha256-matched bundle)', async () => {
  const model = registry.get('clmae-vit-mini-p8-64')
  const ref = referenceFor(model)
  assert.ok(ref.keep_scores !== undefined, 'a clmae reference has keep_scores')
  const input = decodeF32(ref.input)
  const N = ref.input.shape[0]
  const { scores } = await keepScoresOf(model, input, N)
  const diff = maxAbsDiff(scores.flatMap((s) => Array.from(s)), ref.keep_scores.flat())
  console.log(`# keep_scores max |diff| vs reference: ${diff.toExponential(2)}`)
  assert.ok(diff <= TOLERANCE, `max |diff| ${diff} > ${TOLERANCE}`)
})

test('computeMaskMap: top-K mask of the reference at the bundle ratio, heatmaps are PNG', async () => {
  const model = registry.get('clmae-vit-mini-p8-64')
  const ref = referenceFor(model)
  const input = decodeF32(ref.input)
  const S = model.manifest.image_size
  const plane = 3 * S * S
  for (let n = 0; n < ref.input.shape[0]; n++) {
    const image = { pixels: input.slice(n * plane, (n + 1) * plane), crop: Buffer.from(ref.pixels[n].base64, 'base64'), size: S, resize: 'pillow' as const }
    const result = await computeMaskMap(model, image, { heatmap: n === 0 ? 'overlay' : 'png' })
    assert.equal(result.numKept, ref.reconstructions.learned?.num_kept)
    assert.deepEqual(Array.from(result.mask), ref.reconstructions.learned?.mask[n])
    assert.equal(result.mask.reduce((a, v) => a + v, 0), 64 - result.numKept)
    assert.deepEqual(result.heatmapPng?.subarray(1, 4).toString(), 'PNG')
  }
})

test('plain MAE bundle: MODEL_NO_MASKING_MODULE', async () => {
  const model = registry.get('mae-vit-mini-p8-64')
  await assert.rejects(keepScoresOf(model, new Float32Array(3 * 64 * 64), 1), (e: unknown) => e instanceof ApiError && e.code === 'MODEL_NO_MASKING_MODULE')
})

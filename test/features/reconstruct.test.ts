/**
 * Reconstructions: the decoder predictions of the real bundles equal the reference outputs written by training
 * (same input tensors and masks, matched by sha256) within 1e-4; per-patch errors, panels and option checks.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { reconstruct, patchErrors, predictPatches, encodePanelStrip } from '../../src/features/reconstruct.js'
import { selectGiven } from '../../src/features/selection.js'
import { ApiError } from '../../src/errors.js'
import type { TransformedImage } from '../../src/imaging/eval-transform.js'
import { decodeF32, loadRegistry, maxAbsDiff, referenceFor, type Reference } from './reference.js'

const TOLERANCE = 1e-4
const registry = await loadRegistry()
after(async () => { await registry.close() })

function imageOf (ref: Reference, n: number, S: number): TransformedImage {
  const input = decodeF32(ref.input)
  const plane = 3 * S * S
  return { pixels: input.slice(n * plane, (n + 1) * plane), crop: Buffer.from(ref.pixels[n].base64, 'base64'), size: S, resize: 'pillow' }
}

for (const name of ['clmae-vit-mini-p8-64', 'mae-vit-mini-p8-64']) {
  test(`${name}: given-mask predictions equal the reference`, async () => {
    const model = registry.get(name)
    const ref = referenceFor(model)
    const given = ref.reconstructions.given
    const expected = decodeF32(given.pred) // (N, L, P)
    const size = expected.length / ref.input.shape[0]
    let worst = 0
    for (let n = 0; n < ref.input.shape[0]; n++) {
      const result = await reconstruct(model, imageOf(ref, n, model.manifest.image_size), { masking: 'given', maskedPatches: given.masked_patches[n] })
      assert.deepEqual(Array.from(result.selection.idsKeep), given.ids_keep[n])
      assert.deepEqual(Array.from(result.selection.idsRestore), given.ids_restore[n])
      assert.deepEqual(Array.from(result.selection.mask), given.mask[n])
      worst = Math.max(worst, maxAbsDiff(result.pred, expected.subarray(n * size, (n + 1) * size)))
    }
    console.log(`# ${name} given pred max |diff| vs reference: ${worst.toExponential(2)}`)
    assert.ok(worst <= TOLERANCE, `max |diff| ${worst} > ${TOLERANCE}`)
  })
}

test('learned-mask predictions equal the reference (clmae)', async () => {
  const model = registry.get('clmae-vit-mini-p8-64')
  const ref = referenceFor(model)
  const learned = ref.reconstructions.learned!
  const expected = decodeF32(learned.pred)
  const size = expected.length / ref.input.shape[0]
  let worst = 0
  for (let n = 0; n < ref.input.shape[0]; n++) {
    const result = await reconstruct(model, imageOf(ref, n, 64), { masking: 'learned' })
    assert.equal(result.maskRatio, learned.mask_ratio)
    assert.deepEqual(Array.from(result.selection.mask), learned.mask[n])
    // the kept set; its order follows keep scores, and the trained module's saturate at 1.0 in float32, where
    // onnxruntime 1.23 (node) and 1.32 (Python reference) differ by an ulp (image 1: patches 47 and 54)
    const ascending = (ids: ArrayLike<number>): number[] => Array.from(ids).sort((a, b) => a - b)
    assert.deepEqual(ascending(result.selection.idsKeep), ascending(learned.ids_keep[n]))
    worst = Math.max(worst, maxAbsDiff(result.pred, expected.subarray(n * size, (n + 1) * size)))
    // errors: null exactly on kept patches, mean over the removed ones
    const removed = result.patchError.filter((e) => e !== null) as number[]
    assert.equal(removed.length, 64 - learned.num_kept)
    result.patchError.forEach((e, t) => assert.equal(e === null, learned.mask[n][t] === 0))
    assert.ok(Math.abs(result.meanPatchError - removed.reduce((a, b) => a + b, 0) / removed.length) < 1e-12)
  }
  console.log(`# learned pred max |diff| vs reference: ${worst.toExponential(2)}`)
  assert.ok(worst <= TOLERANCE, `max |diff| ${worst} > ${TOLERANCE}`)
})

test('patch error is zero where pred equals the norm-pix target, and the panels tile side by side', async () => {
  const model = registry.get('clmae-vit-mini-p8-64')
  const ref = referenceFor(model)
  const image = imageOf(ref, 2, 64)
  const selection = selectGiven([0, 9, 63], 64)
  const { pred } = await predictPatches(model, image.pixels, selection)
  const real = patchErrors(pred, image.pixels, selection.mask, { rows: 8, cols: 8, patchSize: 8 }, true, 1e-6)
  assert.equal(real.patchError.filter((e) => e !== null).length, 3)
  assert.ok(real.meanPatchError > 0)
  // pixels whose patches are constant per channel: norm-pix target is 0 there, so pred = 0 gives error 0
  const flat = new Float32Array(3 * 64 * 64).fill(0.5)
  const zero = patchErrors(new Float32Array(64 * 192), flat, selection.mask, { rows: 8, cols: 8, patchSize: 8 }, true, 1e-6)
  assert.equal(zero.meanPatchError, 0)
  const result = await reconstruct(model, image, { masking: 'random', seed: 7, maskRatio: 0.5 })
  assert.equal(result.seed, 7)
  assert.equal(result.selection.numKept, 32)
  assert.equal(result.panels.original.width, 256)
  const strip = await encodePanelStrip(result.panels)
  assert.equal(strip.subarray(1, 4).toString(), 'PNG')
  assert.equal(strip.readUInt32BE(16), 4 * 256 + 3 * 4) // IHDR width: four panels and three gaps
})

test('random masking: a drawn seed is echoed and replays the same mask', async () => {
  const model = registry.get('mae-vit-mini-p8-64')
  const ref = referenceFor(model)
  const image = imageOf(ref, 0, 64)
  const first = await reconstruct(model, image, { masking: 'random' })
  assert.ok(Number.isInteger(first.seed) && first.seed! >= 0)
  const again = await reconstruct(model, image, { masking: 'random', seed: first.seed })
  assert.deepEqual(again.selection.mask, first.selection.mask)
  assert.equal(first.maskRatio, 0.75)
})

test('option checks', async () => {
  const model = registry.get('clmae-vit-mini-p8-64')
  const image = imageOf(referenceFor(model), 0, 64)
  const codeOf = async (p: Promise<unknown>): Promise<string> => await p.then(() => 'resolved', (e: unknown) => e instanceof ApiError ? e.code : String(e))
  assert.equal(await codeOf(reconstruct(model, image, { masking: 'given' })), 'MASK_PATCHES_MISSING')
  assert.equal(await codeOf(reconstruct(model, image, { masking: 'given', maskedPatches: [1], maskRatio: 0.5 })), 'MASK_OPTION_CONFLICT')
  assert.equal(await codeOf(reconstruct(model, image, { masking: 'learned', seed: 3 })), 'MASK_OPTION_CONFLICT')
  assert.equal(await codeOf(reconstruct(model, image, { masking: 'random', maskedPatches: [1] })), 'MASK_OPTION_CONFLICT')
  assert.equal(await codeOf(reconstruct(model, image, { masking: 'random', maskRatio: 0.999 })), 'MASK_RATIO_INVALID')
  assert.equal(await codeOf(reconstruct(model, image, { masking: 'given', maskedPatches: [64] })), 'MASK_PATCH_OUT_OF_RANGE')
  assert.equal(await codeOf(reconstruct(registry.get('mae-vit-mini-p8-64'), image, { masking: 'learned' })), 'MODEL_NO_MASKING_MODULE')
})

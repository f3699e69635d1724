import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  patchify, unpatchify, patchStatistics, normPixTarget, undoNormPix, patchMse, type PatchGrid
} from '../../src/imaging/patches.js'

// 2 x 3 grid of 2 x 2 patches: H = 4, W = 6, L = 6, P = 12.
const grid: PatchGrid = { rows: 2, cols: 3, patchSize: 2 }
const H = 4
const W = 6

/** value that encodes its own position: c * 1000 + y * 10 + x */
function codedImage (): Float32Array {
  const image = new Float32Array(3 * H * W)
  for (let c = 0; c < 3; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) image[c * H * W + y * W + x] = c * 1000 + y * 10 + x
  return image
}

test('patchify follows MAE order: token row-major, inside (pixel-row, pixel-col, channel)', () => {
  const patches = patchify(codedImage(), grid)
  assert.equal(patches.length, 6 * 12)
  // token 0 = grid (0, 0): pixels (0,0) (0,1) (1,0) (1,1), each with channels 0, 1, 2 in turn
  assert.deepEqual(Array.from(patches.subarray(0, 12)), [0, 1000, 2000, 1, 1001, 2001, 10, 1010, 2010, 11, 1011, 2011])
  // token 4 = grid row 1, col 1: pixels y 2..3, x 2..3
  assert.deepEqual(Array.from(patches.subarray(4 * 12, 4 * 12 + 6)), [22, 1022, 2022, 23, 1023, 2023])
  // token 5, last value: y 3, x 5, channel 2
  assert.equal(patches[6 * 12 - 1], 2035)
})

test('unpatchify is the exact inverse of patchify', () => {
  const image = codedImage()
  assert.deepEqual(unpatchify(patchify(image, grid), grid), image)
})

test('patch statistics use the unbiased variance', () => {
  const patches = new Float32Array(6 * 12)
  for (let k = 0; k < 12; k++) patches[k] = k // token 0: 0..11
  const { mean, variance } = patchStatistics(patches, grid)
  assert.equal(mean[0], 5.5)
  // sum (k - 5.5)^2 for k = 0..11 = 143; unbiased: / 11 = 13
  assert.ok(Math.abs(variance[0] - 13) < 1e-12)
  assert.equal(variance[1], 0)
})

test('norm-pix target has zero mean and is undone with the true statistics', () => {
  const patches = patchify(codedImage(), grid).map((v, i) => v / 1000 + Math.sin(i))
  const eps = 1e-6
  const target = normPixTarget(patches, grid, eps)
  const stats = patchStatistics(target, grid)
  for (let t = 0; t < 6; t++) assert.ok(Math.abs(stats.mean[t]) < 1e-5, `token ${t} mean ${stats.mean[t]}`)
  const back = undoNormPix(target, patchStatistics(patches, grid), grid, eps)
  let maxDiff = 0
  for (let i = 0; i < back.length; i++) maxDiff = Math.max(maxDiff, Math.abs(back[i] - patches[i]))
  assert.ok(maxDiff < 1e-5, `max |diff| ${maxDiff}`)
})

test('patchMse is the mean over the P values of each patch', () => {
  const a = new Float32Array(6 * 12)
  const b = new Float32Array(6 * 12)
  b.fill(2, 12, 24) // token 1 differs by 2 everywhere
  b[0] = 12 // token 0 differs by 12 in one of 12 values
  const e = patchMse(a, b, grid)
  assert.deepEqual(Array.from(e), [12, 4, 0, 0, 0, 0])
})

test('matches training/clmae/patches.py (test/fixtures/patches-reference.json): exact order, norm-pix within 1e-5', async () => {
  const { readFileSync } = await import('node:fs')
  const ref = JSON.parse(readFileSync(new URL('../fixtures/patches-reference.json', import.meta.url), 'utf8')) as {
    image_size: number, patch_size: number, norm_pix_eps: number, images: { base64: string }, patches: { base64: string }, norm_pix_target: { base64: string }
  }
  const f32 = (b64: string): Float32Array => {
    const bytes = Buffer.from(b64, 'base64')
    return Float32Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4))
  }
  const g = ref.image_size / ref.patch_size
  const refGrid: PatchGrid = { rows: g, cols: g, patchSize: ref.patch_size }
  const image = f32(ref.images.base64)
  const patches = patchify(image, refGrid)
  assert.deepEqual(patches, f32(ref.patches.base64)) // a pure permutation: exact
  assert.deepEqual(unpatchify(patches, refGrid), image)
  const target = normPixTarget(patches, refGrid, ref.norm_pix_eps)
  const expected = f32(ref.norm_pix_target.base64)
  let maxDiff = 0
  for (let i = 0; i < target.length; i++) maxDiff = Math.max(maxDiff, Math.abs(target[i] - expected[i]))
  assert.ok(maxDiff < 1e-5, `norm-pix target max |diff| ${maxDiff}`)
})

// The page's instant top-k (src/ui/top-k.js) must give the service's learned mask exactly
// (src/features/selection.ts selectTopk), ties and float edge cases included.
import { test } from 'node:test'
import assert from 'node:assert/strict'
// @ts-expect-error: a plain ES module of the page, served as-is (no .d.ts)
import { numKept, topKMask } from '../../src/ui/top-k.js'
import { checkedKeptCount, selectTopk } from '../../src/features/selection.js'

/** mulberry-free LCG so the test needs nothing else; values in [0, 1). */
function lcg (seed: number): () => number {
  let s = seed >>> 0
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296 }
}

function toGrid (flat: number[], cols: number): number[][] {
  return Array.from({ length: flat.length / cols }, (_, r) => flat.slice(r * cols, (r + 1) * cols))
}

test('K = floor(L * (1 - r)) as the service computes it, on every slider stop', () => {
  for (let step = 5; step <= 95; step++) {
    const ratio = Number((step * 0.01).toFixed(2)) // the slider's values: 0.05 .. 0.95 by 0.01
    assert.equal(numKept(64, ratio), checkedKeptCount(64, ratio), `ratio ${ratio}`)
  }
  assert.equal(numKept(64, 0.7), 19) // 64 * 0.30000000000000004 = 19.2…, not 19.2 rounded
})

test('top-k mask equals the service\'s selectTopk, with ties broken by the lower index', () => {
  const rand = lcg(7)
  for (let trial = 0; trial < 50; trial++) {
    // Coarse values make ties frequent (only 8 distinct scores over 64 patches).
    const flat = Array.from({ length: 64 }, () => Math.floor(rand() * 8) / 8)
    const ratio = [0.25, 0.5, 0.75, 0.9][trial % 4]
    const page = topKMask(toGrid(flat, 8), ratio)
    const service = selectTopk(flat, checkedKeptCount(64, ratio))
    assert.deepEqual(page.mask.flat(), Array.from(service.mask), `trial ${trial}`)
    assert.equal(page.numKept, service.numKept)
  }
})

test('mask uses 1 = removed and keeps the highest keep scores', () => {
  const { mask, numKept: K } = topKMask([[0.9, 0.1], [0.2, 0.8]], 0.5)
  assert.equal(K, 2)
  assert.deepEqual(mask, [[0, 1], [1, 0]])
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  keptCount, checkedKeptCount, selectTopk, selectRandom, selectSeeded, selectGiven, createRng, stableArgsort, maskedIndices
} from '../../src/features/selection.js'
import { ApiError } from '../../src/errors.js'

function codeOf (fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof ApiError, `expected ApiError, got ${String(err)}`)
    return err.code
  }
  return undefined
}

test('K = floor(L * (1 - r)) as in training', () => {
  assert.equal(keptCount(64, 0.75), 16)
  assert.equal(keptCount(64, 0.9), 6) // 6.3999... floors
  assert.equal(keptCount(196, 0.75), 49)
  assert.equal(keptCount(10, 0.9), 1) // 10 * 0.09999999999999998: training's + 1e-9 keeps it at 1
  assert.equal(checkedKeptCount(64, 0.5), 32)
  assert.equal(codeOf(() => checkedKeptCount(64, 0.999)), 'MASK_RATIO_INVALID') // K = 0
  assert.equal(checkedKeptCount(64, 0.001), 63) // 63.936 floors to 63 = L - 1: allowed
  assert.equal(codeOf(() => checkedKeptCount(64, 1e-17)), 'MASK_RATIO_INVALID') // 1 - r rounds to 1: K = L
})

test('top-K keeps the highest scores; ties go to the lower patch index', () => {
  const scores = [0.1, 0.9, 0.5, 0.9, 0.2, 0.5]
  const s = selectTopk(scores, 3)
  assert.deepEqual(Array.from(s.idsKeep), [1, 3, 2]) // 0.9 (1), 0.9 (3), 0.5 (2 before 5)
  assert.deepEqual(Array.from(s.mask), [1, 0, 0, 0, 1, 1])
  // ids_restore = argsort(ids_shuffle) with ids_shuffle = [1, 3, 2, 5, 4, 0]
  assert.deepEqual(Array.from(s.idsRestore), [5, 0, 2, 1, 4, 3])
  for (let t = 0; t < 6; t++) assert.equal(s.mask[t], s.idsRestore[t] >= 3 ? 1 : 0)
})

test('random selection keeps the smallest noise, as MAE random_masking', () => {
  const s = selectRandom([0.7, 0.1, 0.4, 0.05], 2)
  assert.deepEqual(Array.from(s.idsKeep), [3, 1])
  assert.deepEqual(maskedIndices(s.mask), [0, 2])
  // top-K on 1 - noise gives the same mask (training/clmae check)
  assert.deepEqual(selectTopk([0.3, 0.9, 0.6, 0.95], 2).mask, s.mask)
})

test('seeded masks are reproducible, differ between seeds and remove exactly L - K', () => {
  const a = selectSeeded(64, 16, 42)
  const b = selectSeeded(64, 16, 42)
  const c = selectSeeded(64, 16, 43)
  assert.deepEqual(a, b)
  assert.notDeepEqual(a.mask, c.mask)
  assert.equal(a.mask.reduce((s, v) => s + v, 0), 48)
  const rng = createRng(7)
  for (let i = 0; i < 1000; i++) {
    const u = rng()
    assert.ok(u >= 0 && u < 1)
  }
})

test('given indices: kept in ascending order, validation codes', () => {
  const s = selectGiven([5, 0, 3], 6)
  assert.deepEqual(Array.from(s.idsKeep), [1, 2, 4])
  assert.deepEqual(Array.from(s.mask), [1, 0, 0, 1, 0, 1])
  assert.equal(s.numKept, 3)
  assert.equal(codeOf(() => selectGiven([6], 6)), 'MASK_PATCH_OUT_OF_RANGE')
  assert.equal(codeOf(() => selectGiven([-1], 6)), 'MASK_PATCH_OUT_OF_RANGE')
  assert.equal(codeOf(() => selectGiven([1.5], 6)), 'MASK_PATCH_OUT_OF_RANGE')
  assert.equal(codeOf(() => selectGiven([2, 2], 6)), 'MASK_PATCH_DUPLICATE')
  assert.equal(codeOf(() => selectGiven([], 6)), 'MASK_PATCH_COUNT')
  assert.equal(codeOf(() => selectGiven([0, 1, 2, 3, 4, 5], 6)), 'MASK_PATCH_COUNT')
})

test('stable argsort', () => {
  assert.deepEqual(Array.from(stableArgsort([2, 1, 2, 1], false)), [1, 3, 0, 2])
  assert.deepEqual(Array.from(stableArgsort([2, 1, 2, 1], true)), [0, 2, 1, 3])
})

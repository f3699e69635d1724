import { test } from 'node:test'
import assert from 'node:assert/strict'
import { foldIndices, planFolds } from '../../src/fewshot/cross-validation.js'

test('stratified folds: every fold holds every class, sizes differ by at most one', () => {
  const y = [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
  const plan = planFolds(y, 3, 1)
  assert.ok(plan !== null)
  assert.equal(plan.k, 3) // min(5, smallest class count 3)
  const sizes: number[] = []
  for (let f = 0; f < plan.k; f++) {
    const { train, test } = foldIndices(plan, f)
    assert.equal(train.length + test.length, y.length)
    assert.deepEqual(new Set(test.map((i) => y[i])), new Set([0, 1, 2]))
    sizes.push(test.length)
  }
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1)
})

test('no folds when a class has one example; k capped at 5', () => {
  assert.equal(planFolds([0, 0, 1], 2, 0), null)
  assert.equal(planFolds(Array.from({ length: 40 }, (_, i) => i % 2), 2, 0)?.k, 5)
})

test('the fold assignment depends on the seed only', () => {
  const y = Array.from({ length: 30 }, (_, i) => i % 3)
  assert.deepEqual(planFolds(y, 3, 7)?.foldOf, planFolds(y, 3, 7)?.foldOf)
  assert.notDeepEqual(planFolds(y, 3, 7)?.foldOf, planFolds(y, 3, 8)?.foldOf)
})

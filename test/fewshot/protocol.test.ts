import { test } from 'node:test'
import assert from 'node:assert/strict'
import { capPerClass, evaluateShotRuns, neededIndices, planShotRuns, poolPixels, stratifiedSplit } from '../../src/fewshot/protocol.js'
import { matrixFromRows } from '../../src/fewshot/matrix.js'
import { createRandom } from '../../src/fewshot/random.js'

const labels = Array.from({ length: 60 }, (_, i) => i % 3) // 3 classes x 20

test('shot runs: n per class, nested across n for one seed, different across seeds', () => {
  const runs = planShotRuns(labels, 3, [1, 2, 4], [0, 1])
  assert.equal(runs.length, 6)
  for (const r of runs) {
    const perClass = [0, 1, 2].map((k) => r.indices.filter((i) => labels[i] === k).length)
    assert.deepEqual(perClass, [r.shots, r.shots, r.shots])
  }
  const seed0 = runs.filter((r) => r.seed === 0)
  assert.ok(seed0[0].indices.every((i) => seed0[1].indices.includes(i)))
  assert.ok(seed0[1].indices.every((i) => seed0[2].indices.includes(i)))
  assert.notDeepEqual(runs[2].indices, runs[5].indices)
  assert.deepEqual(planShotRuns(labels, 3, [1, 2, 4], [0, 1]), runs, 'seeded')
  assert.ok(neededIndices(runs).length <= 2 * 4 * 3)
})

test('stratified split and per-class cap are seeded and stratified', () => {
  const { train, test: held } = stratifiedSplit(labels, 3, 0.25, 0)
  assert.equal(train.length + held.length, 60)
  assert.equal(new Set([...train, ...held]).size, 60)
  for (const k of [0, 1, 2]) assert.equal(held.filter((i) => labels[i] === k).length, 5)
  assert.deepEqual(stratifiedSplit(labels, 3, 0.25, 0), { train, test: held })
  const capped = capPerClass(train, labels, 3, 4, 1)
  for (const k of [0, 1, 2]) assert.equal(capped.filter((i) => labels[i] === k).length, 4)
  assert.ok(capped.every((i) => train.includes(i)))
})

test('evaluation: separable features give Acc@1 = 1; Acc@5 >= Acc@1; std over 3 seeds', () => {
  const random = createRandom(3)
  // No pure-noise dimension: standardising 3 examples would blow one up to the signal's scale.
  const centres = [[4, 0, 0], [0, 4, 0], [0, 0, 4]]
  const feature = (k: number): number[] => centres[k].map((v) => v + 0.3 * (random() - 0.5))
  const trainFeatures = labels.map((k) => feature(k))
  const testY = Array.from({ length: 30 }, (_, i) => i % 3)
  const testX = matrixFromRows(testY.map((k) => feature(k)))
  const runs = planShotRuns(labels, 3, [1, 2, 4], [0, 1, 2])
  const seen: string[] = []
  const results = evaluateShotRuns({
    runs, trainLabels: labels, features: (i) => trainFeatures[i], testX, testY, classNames: ['a', 'b', 'c'],
    onRun: (run) => seen.push(`${run.seed}/${run.shots}`)
  })
  assert.equal(seen.length, 9)
  assert.deepEqual(results.map((r) => r.shots), [1, 2, 4])
  for (const r of results) {
    assert.equal(r.acc1.runs.length, 3)
    assert.equal(r.acc1.mean, 1)
    assert.equal(r.acc1.std, 0)
    assert.ok(r.acc5.mean >= r.acc1.mean)
  }
  assert.equal(results[0].C[0], 1, '1-shot: no CV, default C')
})

test('evaluation scores against the true classes (a shuffled test set is near chance)', () => {
  const random = createRandom(4)
  const trainFeatures = labels.map((k) => [k * 5 + random(), k * 5 + random()])
  const testY = Array.from({ length: 30 }, (_, i) => i % 3)
  const testX = matrixFromRows(testY.map((k) => [((k + 1) % 3) * 5 + random(), ((k + 1) % 3) * 5 + random()])) // features of the wrong class
  const [r] = evaluateShotRuns({ runs: planShotRuns(labels, 3, [2], [0]), trainLabels: labels, features: (i) => trainFeatures[i], testX, testY, classNames: ['a', 'b', 'c'] })
  assert.equal(r.acc1.mean, 0)
})

test('poolPixels averages f x f blocks per channel', () => {
  const side = 4
  const image = new Float32Array(3 * side * side).map((_, i) => i)
  const pooled = poolPixels(image, side, 2)
  assert.equal(pooled.length, 3 * 2 * 2)
  assert.equal(pooled[0], (0 + 1 + 4 + 5) / 4)
  assert.equal(pooled[4], 16 + (0 + 1 + 4 + 5) / 4)
  assert.throws(() => poolPixels(image, side, 3), RangeError)
})

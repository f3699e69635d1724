import { test } from 'node:test'
import assert from 'node:assert/strict'
import { assertSamePin, fitProbe, predictProbe, validateProbe, PROBE_METHODS, type FittedProbe } from '../../src/fewshot/classifiers.js'
import { matrixFromRows } from '../../src/fewshot/matrix.js'
import { createRandom } from '../../src/fewshot/random.js'
import { ApiError } from '../../src/errors.js'

/** Gaussian clusters around random unit centres in D dims; returns rows and label names. */
function clusters (options: { classes: number, perClass: number, dim: number, spread: number, seed: number }): { x: number[][], names: string[] } {
  const random = createRandom(options.seed)
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
  const centres = Array.from({ length: options.classes }, () => Array.from({ length: options.dim }, () => 3 * gauss()))
  const x: number[][] = []
  const names: string[] = []
  for (let i = 0; i < options.perClass; i++) {
    centres.forEach((c, k) => {
      x.push(c.map((v) => v + options.spread * gauss()))
      names.push(`label-${k}`)
    })
  }
  return { x, names }
}

function codeOf (fn: () => unknown): string | undefined {
  try { fn() } catch (error) { return error instanceof ApiError ? error.code : `not an ApiError: ${String(error)}` }
  return undefined
}

for (const method of PROBE_METHODS) {
  test(`${method}: separates synthetic clusters and cross-validates`, () => {
    const train = clusters({ classes: 4, perClass: 6, dim: 16, spread: 0.5, seed: 1 })
    const test = clusters({ classes: 4, perClass: 5, dim: 16, spread: 0.5, seed: 1 }) // same centres (same seed), fresh noise below
    const testX = test.x.map((row, i) => row.map((v, j) => v + 0.1 * Math.sin(i * 7 + j)))
    const fit = fitProbe(method, matrixFromRows(train.x), train.names, { seed: 3 })
    assert.deepEqual(fit.probe.labels, ['label-0', 'label-1', 'label-2', 'label-3'])
    assert.deepEqual(fit.counts, new Map([['label-0', 6], ['label-1', 6], ['label-2', 6], ['label-3', 6]]))
    assert.equal(fit.cv.scheme, 'stratified-k-fold(k=5, seed=3)')
    assert.ok(fit.cv.accuracy !== null && fit.cv.accuracy >= 0.95, `cv accuracy ${fit.cv.accuracy}`)
    const predictions = predictProbe(fit.probe, matrixFromRows(testX), { topK: 2 })
    const correct = predictions.filter((p, i) => p.label === test.names[i]).length
    assert.ok(correct / predictions.length >= 0.95, `${correct}/${predictions.length} correct`)
    for (const p of predictions) {
      assert.equal(p.top.length, 2)
      assert.ok(p.top[0].probability >= p.top[1].probability)
      assert.ok(p.top.every((t) => t.probability >= 0 && t.probability <= 1))
    }
    if (method === 'knn') assert.equal(predictions[0].neighbours?.length, 3)
  })
}

test('logreg picks C by cross-validation and reports it; a single-example class gives null accuracy', () => {
  const data = clusters({ classes: 3, perClass: 4, dim: 8, spread: 0.8, seed: 2 })
  const fit = fitProbe('logreg', matrixFromRows(data.x), data.names)
  assert.equal(fit.cv.C_selection, 'cross-validation')
  assert.ok([0.001, 0.01, 0.1, 1, 10].includes(fit.cv.C as number))
  assert.equal(fit.cv.scheme, 'stratified-k-fold(k=4, seed=0)')

  const one = fitProbe('logreg', matrixFromRows([...data.x, [9, 9, 9, 9, 9, 9, 9, 9]]), [...data.names, 'singleton'])
  assert.equal(one.cv.scheme, null)
  assert.equal(one.cv.accuracy, null)
  assert.equal(one.cv.C, 1)
  assert.equal(one.counts.get('singleton'), 1)
})

test('the same examples and seed give the same classifier', () => {
  const data = clusters({ classes: 3, perClass: 5, dim: 6, spread: 1.5, seed: 5 })
  const a = fitProbe('logreg', matrixFromRows(data.x), data.names, { seed: 9 })
  const b = fitProbe('logreg', matrixFromRows(data.x), data.names, { seed: 9 })
  assert.deepEqual(a, b)
})

test('abstains below the threshold but still lists the top labels', () => {
  const data = clusters({ classes: 3, perClass: 3, dim: 4, spread: 0.3, seed: 4 })
  const fit = fitProbe('centroid', matrixFromRows(data.x), data.names)
  const [p] = predictProbe(fit.probe, matrixFromRows([data.x[0]]), { threshold: 1.01 })
  assert.equal(p.abstained, true)
  assert.equal(p.label, null)
  assert.equal(p.top[0].label, data.names[0])
  const [q] = predictProbe(fit.probe, matrixFromRows([data.x[0]]), { threshold: 0.2 })
  assert.equal(q.abstained, false)
  assert.equal(q.label, data.names[0])
})

test('one label is refused with CLASSIFIER_TOO_FEW_CLASSES; a wrong dimension with CLASSIFIER_EMBEDDING_INVALID', () => {
  assert.equal(codeOf(() => fitProbe('logreg', matrixFromRows([[1, 2], [3, 4]]), ['a', 'a'])), 'CLASSIFIER_TOO_FEW_CLASSES')
  const fit = fitProbe('knn', matrixFromRows([[1, 0], [0, 1]]), ['a', 'b'])
  assert.equal(codeOf(() => predictProbe(fit.probe, matrixFromRows([[1, 0, 0]]))), 'CLASSIFIER_EMBEDDING_INVALID')
})

test('the pin check answers CLASSIFIER_MODEL_MISMATCH for another sha256 only', () => {
  const pin = { model: 'm', sha256: 'a'.repeat(64), pooling: 'mean' as const, normalize: true }
  assert.equal(codeOf(() => assertSamePin(pin, { model: 'm', sha256: 'a'.repeat(64) })), undefined)
  assert.equal(codeOf(() => assertSamePin(pin, { model: 'm', sha256: 'b'.repeat(64) })), 'CLASSIFIER_MODEL_MISMATCH')
})

test('validateProbe accepts fitted probes and rejects inconsistent ones', () => {
  const data = clusters({ classes: 2, perClass: 3, dim: 3, spread: 0.5, seed: 6 })
  for (const method of PROBE_METHODS) validateProbe(fitProbe(method, matrixFromRows(data.x), data.names).probe)
  const good = fitProbe('logreg', matrixFromRows(data.x), data.names).probe
  const broken: FittedProbe[] = [
    { ...good, labels: ['only'] },
    { ...good, labels: ['x', 'x'] },
    { ...good, dim: 4 },
    { ...good, state: { ...good.state, bias: [0] } as FittedProbe['state'] },
    { ...good, state: { ...good.state, std: [1, 0, 1] } as FittedProbe['state'] },
    { ...good, state: { ...good.state, weights: [[1, 2, NaN], [1, 2, 3]] } as FittedProbe['state'] }
  ]
  for (const probe of broken) assert.equal(codeOf(() => validateProbe(probe)), 'CLASSIFIER_IMPORT_INVALID', JSON.stringify(probe.labels))
})

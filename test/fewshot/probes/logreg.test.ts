import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fitLogreg, predictLogreg } from '../../../src/fewshot/probes/logreg.js'
import { applyStandardizer, fitStandardizer } from '../../../src/fewshot/standardize.js'
import { matrixFromRows } from '../../../src/fewshot/matrix.js'

/** Largest allowed |p_ts - p_sklearn| per probability (the tolerance). */
const TOLERANCE = 1e-3

interface FixtureCase {
  name: string
  C: number
  labels: string[]
  x: number[][]
  y: string[]
  x_test: number[][]
  probabilities: number[][]
}

const fixture = JSON.parse(readFileSync(new URL('../../fixtures/logreg-sklearn.json', import.meta.url), 'utf8')) as { cases: FixtureCase[] }

test('the fixture file holds several cases, binary and multiclass', () => {
  assert.ok(fixture.cases.length >= 4)
  assert.ok(fixture.cases.some((c) => c.labels.length === 2))
  assert.ok(fixture.cases.some((c) => c.labels.length > 3))
})

for (const c of fixture.cases) {
  test(`probabilities match scikit-learn within ${TOLERANCE}: ${c.name}`, () => {
    const x = matrixFromRows(c.x)
    const scaler = fitStandardizer(x)
    const y = c.y.map((label) => c.labels.indexOf(label))
    const fit = fitLogreg(applyStandardizer(scaler, x), y, c.labels.length, { C: c.C })
    assert.ok(fit.converged, `L-BFGS did not converge in ${fit.iterations} iterations`)
    const probs = predictLogreg(fit, applyStandardizer(scaler, matrixFromRows(c.x_test)))
    let worst = 0
    c.probabilities.forEach((row, i) => row.forEach((p, k) => {
      worst = Math.max(worst, Math.abs(probs.data[i * c.labels.length + k] - p))
    }))
    assert.ok(worst < TOLERANCE, `max |difference| ${worst}`)
  })
}

test('a warm start reaches the same optimum', () => {
  const c = fixture.cases[0]
  const x = applyStandardizer(fitStandardizer(matrixFromRows(c.x)), matrixFromRows(c.x))
  const y = c.y.map((label) => c.labels.indexOf(label))
  const cold = fitLogreg(x, y, c.labels.length, { C: c.C })
  const start = fitLogreg(x, y, c.labels.length, { C: c.C / 10 })
  const warm = fitLogreg(x, y, c.labels.length, { C: c.C, init: start })
  const a = predictLogreg(cold, x).data
  const b = predictLogreg(warm, x).data
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5)
})

test('rejects mismatched labels and a non-positive C', () => {
  const x = matrixFromRows([[0, 1], [1, 0]])
  assert.throws(() => fitLogreg(x, [0], 2, { C: 1 }), RangeError)
  assert.throws(() => fitLogreg(x, [0, 1], 2, { C: 0 }), RangeError)
})

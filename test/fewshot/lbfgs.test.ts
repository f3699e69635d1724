import { test } from 'node:test'
import assert from 'node:assert/strict'
import { minimizeLbfgs } from '../../src/fewshot/lbfgs.js'

test('minimises an ill-conditioned quadratic to its known optimum', () => {
  // f(x) = sum_i a_i (x_i - c_i)^2 / 2 with a spread of 1e4 in curvature
  const a = [1, 10, 100, 1000, 10000]
  const c = [1, -2, 3, -4, 5]
  const result = minimizeLbfgs((x, g) => {
    let f = 0
    for (let i = 0; i < x.length; i++) { const d = x[i] - c[i]; f += a[i] * d * d / 2; g[i] = a[i] * d }
    return f
  }, new Float64Array(5), { gradientTolerance: 1e-9 })
  assert.ok(result.converged)
  result.x.forEach((v, i) => assert.ok(Math.abs(v - c[i]) < 1e-8, `x[${i}] = ${v}`))
})

test('minimises a smooth non-quadratic convex function (log-sum-exp + ridge)', () => {
  // f(x) = log(e^{x0} + e^{x1} + e^{-x0-x1}) + 0.05 |x|^2: optimum where the gradient vanishes
  const f = (x: Float64Array, g: Float64Array): number => {
    const e = [Math.exp(x[0]), Math.exp(x[1]), Math.exp(-x[0] - x[1])]
    const s = e[0] + e[1] + e[2]
    g[0] = (e[0] - e[2]) / s + 0.1 * x[0]
    g[1] = (e[1] - e[2]) / s + 0.1 * x[1]
    return Math.log(s) + 0.05 * (x[0] * x[0] + x[1] * x[1])
  }
  const result = minimizeLbfgs(f, Float64Array.from([3, -2]), { gradientTolerance: 1e-10 })
  assert.ok(result.converged)
  // By symmetry the optimum is x0 = x1 = -(x0 + x1), i.e. the origin.
  assert.ok(Math.abs(result.x[0]) < 1e-8 && Math.abs(result.x[1]) < 1e-8, `x = ${Array.from(result.x)}`)
})

test('stops at maxIterations and says it did not converge', () => {
  const result = minimizeLbfgs((x, g) => { g[0] = 2 * (x[0] - 1e6); return (x[0] - 1e6) ** 2 }, new Float64Array(1), { maxIterations: 1, gradientTolerance: 1e-12 })
  assert.equal(result.iterations, 1)
  assert.equal(result.converged, false)
})

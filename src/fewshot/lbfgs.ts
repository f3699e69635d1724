/**
 * Limited-memory BFGS for a smooth convex objective (the logistic-regression loss), with a backtracking
 * line search on the Armijo condition. Small and dependency-free so the few-shot fit runs in the service.
 *
 * Why this is enough: the L2-regularised multinomial loss is smooth and strictly convex in the weights,
 * so Armijo backtracking from the unit quasi-Newton step converges; curvature pairs with s.y <= 0 are
 * skipped to keep the inverse-Hessian approximation positive definite.
 */

/** Returns the objective at `x` and writes its gradient into `grad` (same length as x). */
export type Objective = (x: Float64Array, grad: Float64Array) => number

export interface LbfgsOptions {
  /** stop when max |gradient| falls below this */
  gradientTolerance?: number
  maxIterations?: number
  /** curvature pairs kept */
  memory?: number
}

export interface LbfgsResult {
  x: Float64Array
  value: number
  iterations: number
  converged: boolean
}

function dot (a: Float64Array, b: Float64Array): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i] * b[i]
  return s
}

function maxAbs (a: Float64Array): number {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]))
  return m
}

/** Minimises `f` from `x0` (not modified). */
export function minimizeLbfgs (f: Objective, x0: Float64Array, options: LbfgsOptions = {}): LbfgsResult {
  const tol = options.gradientTolerance ?? 1e-8
  const maxIterations = options.maxIterations ?? 1000
  const m = options.memory ?? 10
  const n = x0.length

  let x = Float64Array.from(x0)
  let g = new Float64Array(n)
  let value = f(x, g)
  const sList: Float64Array[] = []
  const yList: Float64Array[] = []
  const rhoList: number[] = []
  const direction = new Float64Array(n)
  const alpha = new Float64Array(m)
  let xNext = new Float64Array(n)
  let gNext = new Float64Array(n)

  for (let iter = 0; iter < maxIterations; iter++) {
    if (maxAbs(g) < tol) return { x, value, iterations: iter, converged: true }

    // Two-loop recursion: direction = -H g.
    for (let i = 0; i < n; i++) direction[i] = -g[i]
    const k = sList.length
    for (let j = k - 1; j >= 0; j--) {
      alpha[j] = rhoList[j] * dot(sList[j], direction)
      const y = yList[j]
      for (let i = 0; i < n; i++) direction[i] -= alpha[j] * y[i]
    }
    if (k > 0) {
      const gamma = dot(sList[k - 1], yList[k - 1]) / dot(yList[k - 1], yList[k - 1])
      for (let i = 0; i < n; i++) direction[i] *= gamma
    }
    for (let j = 0; j < k; j++) {
      const beta = rhoList[j] * dot(yList[j], direction)
      const s = sList[j]
      for (let i = 0; i < n; i++) direction[i] += (alpha[j] - beta) * s[i]
    }
    let slope = dot(g, direction)
    if (!(slope < 0)) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      sList.length = 0; yList.length = 0; rhoList.length = 0
      for (let i = 0; i < n; i++) direction[i] = -g[i]
      slope = dot(g, direction)
    }

    // Backtracking line search (Armijo, c1 = 1e-4); the first step is scaled to a unit-length move.
    let step = k === 0 ? Math.min(1, 1 / Math.max(maxAbs(g), 1e-12)) : 1
    let nextValue = Infinity
    let accepted = false
    for (let tries = 0; tries < 60; tries++) {
      for (let i = 0; i < n; i++) xNext[i] = x[i] + step * direction[i]
      nextValue = f(xNext, gNext)
      if (Number.isFinite(nextValue) && nextValue <= value + 1e-4 * step * slope) { accepted = true; break }
      step *= 0.5
    }
    if (!accepted) return { x, value, iterations: iter, converged: maxAbs(g) < tol * 100 }

    const s = new Float64Array(n)
    const y = new Float64Array(n)
    for (let i = 0; i < n; i++) { s[i] = xNext[i] - x[i]; y[i] = gNext[i] - g[i] }
    const sy = dot(s, y)
    if (sy > 1e-12 * Math.sqrt(dot(s, s) * dot(y, y))) {
      if (sList.length === m) { sList.shift(); yList.shift(); rhoList.shift() }
      sList.push(s); yList.push(y); rhoList.push(1 / sy)
    }
    const improvement = value - nextValue;
    [x, xNext] = [xNext, x];
    [g, gNext] = [gNext, g]
    value = nextValue
    // Relative change this small means we are at machine precision: stop rather than spin.
    if (improvement <= 1e-16 * Math.max(1, Math.abs(value)) && maxAbs(g) < tol * 1e3) {
      return { x, value, iterations: iter + 1, converged: true }
    }
  }
  return { x, value, iterations: maxIterations, converged: maxAbs(g) < tol }
}

/**
 * `npm run bench:fewshot-fit [-- --sizes 100x10,500x10,1000x20,2000x50 --dim 192]`
 *
 * Wall time of one few-shot fit (fitProbe: logreg with cross-validated C, kNN, centroid) at a few
 * classifier sizes (examples x labels), on synthetic clusters of D-dimensional embeddings, and how
 * long the event loop stalls while the same logreg fit runs on the FitRunner worker (the longest gap
 * between 10 ms timer ticks). Tells an operator how long a refit takes before they raise the limits.
 */
import { parseArgs } from 'node:util'
import { fitProbe, type ProbeMethod } from '../src/fewshot/classifiers.js'
import { FitRunner } from '../src/fewshot/fit-runner.js'
import { createMatrix, type Matrix } from '../src/fewshot/matrix.js'

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '100x10,500x10,1000x20,2000x50' }, dim: { type: 'string', default: '192' } } })
const dim = Number(values.dim)
const sizes = values.sizes.split(',').map((s) => s.split('x').map(Number) as [number, number])

function clusters (n: number, k: number): { x: Matrix, names: string[] } {
  const x = createMatrix(n, dim)
  const names: string[] = []
  for (let i = 0; i < n; i++) {
    names.push(`c${i % k}`)
    for (let j = 0; j < dim; j++) x.data[i * dim + j] = Math.sin(i * 7.1 + j) + (j % k === i % k ? 1 : 0)
  }
  return { x, names }
}

function seconds (run: () => void): number {
  const t = performance.now()
  run()
  return (performance.now() - t) / 1000
}

const runner = new FitRunner()
console.log(`| examples x labels (D = ${dim}) | logreg (CV) s | knn s | centroid s | logreg on the worker: s, longest event-loop gap ms |`)
console.log('|---|---|---|---|---|')
for (const [n, k] of sizes) {
  const { x, names } = clusters(n, k)
  const main = (['logreg', 'knn', 'centroid'] as ProbeMethod[]).map((m) => seconds(() => fitProbe(m, x, names)).toFixed(2))
  let last = performance.now()
  let gap = 0
  const timer = setInterval(() => { const now = performance.now(); gap = Math.max(gap, now - last); last = now }, 10)
  const t = performance.now()
  await runner.fit('logreg', x, names)
  const worker = (performance.now() - t) / 1000
  clearInterval(timer)
  console.log(`| ${n} x ${k} | ${main.join(' | ')} | ${worker.toFixed(2)}, ${gap.toFixed(0)} |`)
}
await runner.close()

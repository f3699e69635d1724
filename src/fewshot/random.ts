/**
 * Seeded pseudo-random numbers (mulberry32) and shuffles, so folds, n-shot draws and splits are
 * reproducible from an integer seed in the service and in the benchmark CLI alike.
 */

import { createRng } from '../features/selection.js'

export type Random = () => number

/** Uniform floats in [0, 1) from a 32-bit seed: the same mulberry32 as the masks' (features/selection.ts). */
export function createRandom (seed: number): Random {
  return createRng(seed)
}

/** Fisher-Yates shuffle of a copy. */
export function shuffled<T> (items: readonly T[], random: Random): T[] {
  const out = items.slice()
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const tmp = out[i]; out[i] = out[j]; out[j] = tmp
  }
  return out
}

/** Indices grouped by class: result[k] = indices i with labels[i] === k, in input order. */
export function indicesByClass (labels: readonly number[], numClasses: number): number[][] {
  const groups: number[][] = Array.from({ length: numClasses }, () => [])
  labels.forEach((k, i) => groups[k].push(i))
  return groups
}

/**
 * Which patches the encoder sees: top-K of the learned keep scores, a seeded random subset, or given
 * indices. Mirrors training/clmae/selection.py (MAE `random_masking`, CL-MAE `curriculum_masking`):
 *
 * - ids_shuffle (L): the patch order [kept patches, then removed patches];
 * - ids_keep (K) = ids_shuffle[:K]: the kept patches, in the order the encoder receives them;
 * - ids_restore (L) = argsort(ids_shuffle): ids_restore[t] is the rank of patch t; rank < K means kept;
 * - mask (L) = 1[ids_restore >= K]: 1 = removed, 0 = kept (the convention of src/imaging/patches.ts).
 *
 * One image (N = 1) at a time; the route batches nothing here.
 */
import { ApiError } from '../errors.js'

export interface Selection {
  /** K, the number of kept patches */
  numKept: number
  /** (K) kept patch indices in encoder order */
  idsKeep: Int32Array
  /** (L) rank of each patch in ids_shuffle */
  idsRestore: Int32Array
  /** (L) 1 = removed, 0 = kept */
  mask: Uint8Array
}

/**
 * K = floor(L * (1 - mask_ratio)), computed as training/clmae/selection.py's num_kept does: with 1e-9 added
 * before flooring, so a product like 0.9999999999999998 (float error for an exact integer) is not floored down.
 */
export function keptCount (L: number, maskRatio: number): number {
  return Math.floor(L * (1 - maskRatio) + 1e-9)
}

/**
 * K for a requested mask ratio, refused unless at least one patch is kept and one removed
 * (the encoder needs a token and the reconstruction needs something to reconstruct).
 */
export function checkedKeptCount (L: number, maskRatio: number): number {
  const K = keptCount(L, maskRatio)
  if (!(maskRatio > 0 && maskRatio < 1) || K < 1 || K > L - 1) {
    throw new ApiError('MASK_RATIO_INVALID',
      `mask_ratio ${maskRatio} keeps K = floor(${L} * (1 - ${maskRatio})) = ${K} of ${L} patches; ` +
      `it must keep at least 1 and remove at least 1 (K between 1 and ${L - 1}).`)
  }
  return K
}

/** Builds the selection from a full patch order ids_shuffle (L) and K. */
export function selectionFromShuffle (idsShuffle: Int32Array, K: number): Selection {
  const L = idsShuffle.length
  const idsRestore = new Int32Array(L)
  for (let rank = 0; rank < L; rank++) idsRestore[idsShuffle[rank]] = rank // argsort of a permutation
  const mask = new Uint8Array(L)
  for (let t = 0; t < L; t++) mask[t] = idsRestore[t] >= K ? 1 : 0
  return { numKept: K, idsKeep: idsShuffle.slice(0, K), idsRestore, mask }
}

/**
 * Stable argsort: indices that order `values`, ties broken by the lower index
 * (as ONNX TopK and torch.sort(stable=True)). `descending` flips the value order only.
 */
export function stableArgsort (values: ArrayLike<number>, descending: boolean): Int32Array {
  const order = Array.from({ length: values.length }, (_, i) => i)
  const sign = descending ? -1 : 1
  order.sort((a, b) => sign * (values[a] - values[b]) || a - b)
  return Int32Array.from(order)
}

/**
 * Learned masking: keep the K patches with the highest keep_score (ties: lower patch index first).
 * keep_scores (L) -> Selection; ids_keep is in descending-score order, as in training.
 */
export function selectTopk (keepScores: ArrayLike<number>, K: number): Selection {
  return selectionFromShuffle(stableArgsort(keepScores, true), K)
}

/**
 * MAE random masking from noise: keep the K patches with the smallest noise.
 * noise (L) in [0, 1) -> Selection.
 */
export function selectRandom (noise: ArrayLike<number>, K: number): Selection {
  return selectionFromShuffle(stableArgsort(noise, false), K)
}

/**
 * mulberry32: a small, fast 32-bit seeded PRNG (public domain, Tommy Ettinger). Enough for choosing
 * which patches to hide, reproducibly from a uint32 seed in both this service and any client that
 * wants to replay a mask; not for cryptography.
 */
export function createRng (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6D2B79F5) >>> 0
    let z = state
    z = Math.imul(z ^ (z >>> 15), z | 1)
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61)
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296
  }
}

/** Seeded random masking: noise (L) from mulberry32(seed), then selectRandom. */
export function selectSeeded (L: number, K: number, seed: number): Selection {
  const rng = createRng(seed)
  const noise = new Float64Array(L)
  for (let t = 0; t < L; t++) noise[t] = rng()
  return selectRandom(noise, K)
}

/**
 * Given masking: `maskedPatches` lists the removed patch indices (any order). Kept patches go to the
 * encoder in ascending index order, removed ones follow in ascending order.
 * Refuses indices that are not integers in [0, L), duplicates, and a count that removes nothing or
 * everything.
 */
export function selectGiven (maskedPatches: readonly number[], L: number): Selection {
  const mask = new Uint8Array(L)
  for (const index of maskedPatches) {
    if (!Number.isInteger(index) || index < 0 || index >= L) {
      throw new ApiError('MASK_PATCH_OUT_OF_RANGE',
        `masked_patches contains ${index}; patch indices are integers from 0 to ${L - 1} (row * cols + col).`)
    }
    if (mask[index] === 1) {
      throw new ApiError('MASK_PATCH_DUPLICATE', `masked_patches lists patch ${index} more than once.`)
    }
    mask[index] = 1
  }
  const removed = maskedPatches.length
  if (removed < 1 || removed > L - 1) {
    throw new ApiError('MASK_PATCH_COUNT',
      `masked_patches removes ${removed} of ${L} patches; remove at least 1 and keep at least 1.`)
  }
  const idsShuffle = new Int32Array(L)
  let rank = 0
  for (let t = 0; t < L; t++) if (mask[t] === 0) idsShuffle[rank++] = t
  for (let t = 0; t < L; t++) if (mask[t] === 1) idsShuffle[rank++] = t
  return selectionFromShuffle(idsShuffle, L - removed)
}

/** mask (L) -> the removed patch indices, ascending. */
export function maskedIndices (mask: Uint8Array): number[] {
  const out: number[] = []
  for (let t = 0; t < mask.length; t++) if (mask[t] === 1) out.push(t)
  return out
}

// @ts-check
// The learned mask for a mask ratio, recomputed in the page so the slider answers at once:
// keep the K = floor(L * (1 - mask_ratio)) patches with the highest keep_score, remove the rest.
// Mask convention (as everywhere in the project): 1 = removed, 0 = kept. Ties keep the lower
// patch index, as a stable descending sort does. The page re-queries the API when the slider is
// released and shows whether the two agree (see mask-audit.js).

/**
 * @param {number} numPatches L
 * @param {number} maskRatio r in (0, 1)
 * @returns {number} K, the number of kept patches
 */
export function numKept (numPatches, maskRatio) {
  return Math.floor(numPatches * (1 - maskRatio))
}

/**
 * @param {number[][]} keepScore rows x cols, high = keep
 * @param {number} maskRatio
 * @returns {{mask: number[][], numKept: number}} mask rows x cols, 1 = removed
 */
export function topKMask (keepScore, maskRatio) {
  const cols = keepScore[0]?.length ?? 0
  const flat = keepScore.flat() // (L,) token t = row * cols + col
  const K = numKept(flat.length, maskRatio)
  const order = flat.map((_, t) => t).sort((a, b) => flat[b] - flat[a] || a - b)
  const maskFlat = new Array(flat.length).fill(1)
  for (const t of order.slice(0, K)) maskFlat[t] = 0
  const mask = keepScore.map((row, r) => row.map((_, c) => maskFlat[r * cols + c]))
  return { mask, numKept: K }
}

/**
 * Patch layout of one image, the same as training/clmae/patches.py (MAE `models_mae.py: patchify`).
 *
 * Letters: H = W = image side, p = patch size, rows x cols = H/p x W/p grid, L = rows * cols patches,
 * P = p * p * 3 values per patch.
 * - Token order is row-major over the grid: token t = row * cols + col.
 * - Inside a token the order is (pixel-row, pixel-col, channel): channel is last.
 * - Mask convention (stated once, here): mask[t] = 1 means patch t is removed (hidden from the encoder),
 *   mask[t] = 0 means it is kept (visible). keep_score is high for kept patches.
 *
 * Everything here works on one image (N = 1): the service reconstructs one image per request. Images are
 * CHW Float32Arrays (3, H, W); patch arrays are Float32Arrays (L, P), row-major.
 */

export interface PatchGrid {
  /** grid rows = H / p */
  rows: number
  /** grid cols = W / p */
  cols: number
  /** p */
  patchSize: number
}

/** L = rows * cols */
export function patchCount (grid: PatchGrid): number {
  return grid.rows * grid.cols
}

/** P = p * p * 3 */
export function patchDim (grid: PatchGrid): number {
  return grid.patchSize * grid.patchSize * 3
}

/**
 * images (3, H, W) -> patches (L, p*p*3), MAE layout.
 * Equivalent to reshape (3, rows, p, cols, p) -> permute (rows, cols, p, p, 3) -> (L, p*p*3).
 */
export function patchify (image: Float32Array, grid: PatchGrid): Float32Array {
  const { rows, cols, patchSize: p } = grid
  const H = rows * p
  const W = cols * p
  if (image.length !== 3 * H * W) {
    throw new Error(`patchify: image has ${image.length} values, expected 3*${H}*${W}. This is a bug.`)
  }
  const P = p * p * 3
  const out = new Float32Array(rows * cols * P)
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const base = (r * cols + c) * P
      for (let i = 0; i < p; i++) {
        const y = r * p + i
        for (let j = 0; j < p; j++) {
          const x = c * p + j
          const o = base + (i * p + j) * 3
          out[o] = image[y * W + x] // channel 0
          out[o + 1] = image[H * W + y * W + x] // channel 1
          out[o + 2] = image[2 * H * W + y * W + x] // channel 2
        }
      }
    }
  }
  return out
}

/** patches (L, p*p*3) -> images (3, H, W); the exact inverse of patchify. */
export function unpatchify (patches: Float32Array, grid: PatchGrid): Float32Array {
  const { rows, cols, patchSize: p } = grid
  const H = rows * p
  const W = cols * p
  const P = p * p * 3
  if (patches.length !== rows * cols * P) {
    throw new Error(`unpatchify: got ${patches.length} values, expected ${rows * cols}*${P}. This is a bug.`)
  }
  const out = new Float32Array(3 * H * W)
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const base = (r * cols + c) * P
      for (let i = 0; i < p; i++) {
        const y = r * p + i
        for (let j = 0; j < p; j++) {
          const x = c * p + j
          const o = base + (i * p + j) * 3
          out[y * W + x] = patches[o]
          out[H * W + y * W + x] = patches[o + 1]
          out[2 * H * W + y * W + x] = patches[o + 2]
        }
      }
    }
  }
  return out
}

export interface PatchStatistics {
  /** (L) mean over the P values of each patch */
  mean: Float64Array
  /** (L) unbiased variance (divides by P - 1), as torch.var in MAE's forward_loss */
  variance: Float64Array
}

/** patches (L, P) -> per-patch mean and unbiased variance, each (L). Accumulated in float64. */
export function patchStatistics (patches: Float32Array, grid: PatchGrid): PatchStatistics {
  const L = patchCount(grid)
  const P = patchDim(grid)
  const mean = new Float64Array(L)
  const variance = new Float64Array(L)
  for (let t = 0; t < L; t++) {
    let sum = 0
    for (let k = 0; k < P; k++) sum += patches[t * P + k]
    const m = sum / P
    let sq = 0
    for (let k = 0; k < P; k++) {
      const d = patches[t * P + k] - m
      sq += d * d
    }
    mean[t] = m
    variance[t] = sq / (P - 1)
  }
  return { mean, variance }
}

/**
 * The training target with norm_pix_loss: (x - mean_t) / sqrt(var_t + eps) per patch.
 * patches (L, P) -> target (L, P).
 */
export function normPixTarget (patches: Float32Array, grid: PatchGrid, eps: number): Float32Array {
  const { mean, variance } = patchStatistics(patches, grid)
  const P = patchDim(grid)
  const out = new Float32Array(patches.length)
  for (let t = 0; t < mean.length; t++) {
    const scale = Math.sqrt(variance[t] + eps)
    for (let k = 0; k < P; k++) out[t * P + k] = (patches[t * P + k] - mean[t]) / scale
  }
  return out
}

/**
 * Turns a norm-pix prediction back into normalised-input values with the given patch statistics:
 * pred * sqrt(var_t + eps) + mean_t. The statistics are those of the true (original) patches, which is
 * what the MAE demo does; the decoder alone cannot know a removed patch's mean and variance.
 * pred (L, P) -> patches (L, P).
 */
export function undoNormPix (pred: Float32Array, stats: PatchStatistics, grid: PatchGrid, eps: number): Float32Array {
  const P = patchDim(grid)
  const out = new Float32Array(pred.length)
  for (let t = 0; t < stats.mean.length; t++) {
    const scale = Math.sqrt(stats.variance[t] + eps)
    for (let k = 0; k < P; k++) out[t * P + k] = pred[t * P + k] * scale + stats.mean[t]
  }
  return out
}

/**
 * Mean squared error per patch: a, b (L, P) -> (L), the mean over the P values of (a - b)^2
 * (e_t of MAE's forward_loss).
 */
export function patchMse (a: Float32Array, b: Float32Array, grid: PatchGrid): Float64Array {
  const L = patchCount(grid)
  const P = patchDim(grid)
  const out = new Float64Array(L)
  for (let t = 0; t < L; t++) {
    let sq = 0
    for (let k = 0; k < P; k++) {
      const d = a[t * P + k] - b[t * P + k]
      sq += d * d
    }
    out[t] = sq / P
  }
  return out
}

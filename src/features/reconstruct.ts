/**
 * Reconstructions of one image under a chosen mask, as in the MAE demo: pick the kept patches (learned
 * top-K of keep_score, seeded random, or given indices), run the encoder on them (ids_keep, any K: the K
 * axis is dynamic) and the decoder on the latent (ids_restore), then
 * - per masked patch, the MSE between pred and the training target (the norm-pix target when the bundle
 *   was trained with norm_pix_loss), null for kept patches, and their mean;
 * - four panels: the model's input crop, the crop with removed patches greyed, the reconstruction, and the
 *   reconstruction with the visible patches pasted back. With norm_pix_loss the prediction is turned into
 *   pixels with each patch's true mean and variance (of the original normalised input), as the MAE demo
 *   does; the answer says so (norm_pix.uses_true_patch_statistics).
 * No Fastify here (style rule 8).
 */
import { randomInt } from 'node:crypto'
import type { LoadedModel } from '../bundles/model-registry.js'
import { ApiError } from '../errors.js'
import type { TransformedImage } from '../imaging/eval-transform.js'
import { normPixTarget, patchify, patchMse, patchStatistics, undoNormPix, unpatchify, type PatchGrid } from '../imaging/patches.js'
import { denormalize, displayScale, encodePng, enlarge, greyRemoved, sideBySide, type RgbImage } from '../imaging/render.js'
import type { RunOptions } from '../inference/batcher.js'
import { float32Tensor, int64Tensor } from '../inference/tensor.js'
import { keepScoresOf } from './mask-map.js'
import { checkedKeptCount, selectGiven, selectSeeded, selectTopk, type Selection } from './selection.js'

export type Masking = 'learned' | 'random' | 'given'

export interface ReconstructOptions {
  masking: Masking
  /** learned / random: default the bundle's mask ratio; not allowed with given */
  maskRatio?: number
  /** random only: uint32; drawn when absent */
  seed?: number
  /** given only: removed patch indices */
  maskedPatches?: number[]
}

export interface PanelImages {
  original: RgbImage
  masked: RgbImage
  reconstruction: RgbImage
  reconstructionVisible: RgbImage
}

export interface ReconstructionResult {
  masking: Masking
  /** removed / L as applied (for given: the share of patches listed) */
  maskRatio: number
  seed?: number
  selection: Selection
  /** (L, p*p*3) decoder output, norm-pix space when normPixUsed */
  pred: Float32Array
  /** (L) MSE against the training target for removed patches, null for kept ones */
  patchError: Array<number | null>
  meanPatchError: number
  normPixUsed: boolean
  /** panels at the model's resolution, enlarged by displayScale (nearest neighbour) */
  panels: PanelImages
  queueMs: number
  inferenceMs: number
}

/** The largest seed: seeds are uint32 (mulberry32's state). */
export const MAX_SEED = 0xFFFFFFFF

export function gridOf (model: LoadedModel): PatchGrid {
  return { rows: model.manifest.grid[0], cols: model.manifest.grid[1], patchSize: model.manifest.patch_size }
}

/**
 * Refuses a bundle without a decoder (an imported encoder-only checkpoint), options that do not apply to the
 * masking (so a request never silently means something else), learned masking on a bundle without a masking
 * module, and a ratio that keeps or removes nothing.
 * Needs no image: the route calls it before decoding.
 */
export function checkReconstructOptions (model: LoadedModel, options: ReconstructOptions): void {
  const { masking } = options
  if (options.maskedPatches !== undefined && masking !== 'given') {
    throw new ApiError('MASK_OPTION_CONFLICT', `masked_patches applies to masking "given" only (masking is "${masking}")`)
  }
  if (options.seed !== undefined && masking !== 'random') {
    throw new ApiError('MASK_OPTION_CONFLICT', `seed applies to masking "random" only (masking is "${masking}")`)
  }
  if (options.maskRatio !== undefined && masking === 'given') {
    throw new ApiError('MASK_OPTION_CONFLICT', 'mask_ratio does not apply to masking "given": the ratio is the share of masked_patches')
  }
  if (masking === 'given' && options.maskedPatches === undefined) {
    throw new ApiError('MASK_PATCHES_MISSING', 'masking "given" needs masked_patches, the indices of the patches to remove (row * cols + col)')
  }
  if (!model.hasGraph('decoder')) {
    throw new ApiError('MODEL_NO_DECODER', `model ${model.id} has no decoder (an encoder-only checkpoint): it serves embeddings, not reconstructions`)
  }
  if (masking === 'learned' && !model.hasGraph('keep_scores')) {
    throw new ApiError('MODEL_NO_MASKING_MODULE', `model ${model.id} (method ${model.manifest.method}) has no learned masking module; use masking "random" or "given"`)
  }
  if (masking !== 'given') checkedKeptCount(model.manifest.num_patches, options.maskRatio ?? model.manifest.mask_ratio)
}

/**
 * Runs encoder then decoder for one image: pixels (3, S, S), selection -> pred (L, p*p*3).
 * ids_keep (1, K) and ids_restore (1, L) follow training/clmae/selection.py.
 */
export async function predictPatches (model: LoadedModel, pixels: Float32Array, selection: Selection, runOptions: RunOptions = {}): Promise<{ pred: Float32Array, queueMs: number, inferenceMs: number }> {
  const S = model.manifest.image_size
  const L = model.manifest.num_patches
  const P = model.manifest.dims.patch_dim
  const K = selection.numKept
  const enc = await model.run('encoder', {
    images: float32Tensor(pixels, [1, 3, S, S]),
    ids_keep: int64Tensor(Array.from(selection.idsKeep), [1, K])
  }, runOptions)
  const latent = enc.outputs.latent // (1, 1+K, D)
  if (latent === undefined || latent.dims[1] !== 1 + K) {
    throw new Error(`encoder of ${model.id} returned ${latent === undefined ? 'no latent' : `[${latent.dims.join(', ')}]`} for K = ${K}. This is a bug.`)
  }
  const dec = await model.run('decoder', {
    latent,
    ids_restore: int64Tensor(Array.from(selection.idsRestore), [1, L])
  }, runOptions)
  const pred = dec.outputs.pred // (1, L, p*p*3)
  if (pred === undefined || pred.dims[1] !== L || pred.dims[2] !== P) {
    throw new Error(`decoder of ${model.id} returned ${pred === undefined ? 'no pred' : `[${pred.dims.join(', ')}]`}, expected [1, ${L}, ${P}]. This is a bug.`)
  }
  return { pred: pred.data as Float32Array, queueMs: enc.queueMs + dec.queueMs, inferenceMs: enc.inferenceMs + dec.inferenceMs }
}

/**
 * Per-patch error: MSE over the p*p*3 values between pred and the training target (patchify of the
 * normalised input; norm-pix standardised per patch when normPix), for removed patches; null for kept.
 */
export function patchErrors (pred: Float32Array, pixels: Float32Array, mask: Uint8Array, grid: PatchGrid, normPix: boolean, eps: number): { patchError: Array<number | null>, meanPatchError: number } {
  const patches = patchify(pixels, grid) // (L, P)
  const target = normPix ? normPixTarget(patches, grid, eps) : patches
  const mse = patchMse(pred, target, grid) // (L)
  let sum = 0
  let removed = 0
  const patchError = Array.from(mse, (e, t) => {
    if (mask[t] === 0) return null
    sum += e
    removed++
    return e
  })
  return { patchError, meanPatchError: removed > 0 ? sum / removed : 0 }
}

/** The four panels at display size. pixels (3, S, S) normalised; crop (S, S, 3) uint8; pred (L, P). */
export function buildPanels (model: LoadedModel, image: TransformedImage, pred: Float32Array, mask: Uint8Array): PanelImages {
  const grid = gridOf(model)
  const { mean, std } = model.manifest.eval_transform
  const S = image.size
  const patches = patchify(image.pixels, grid) // (L, P)
  const values = model.manifest.norm_pix_loss === true
    ? undoNormPix(pred, patchStatistics(patches, grid), grid, model.manifest.norm_pix_eps) // true statistics
    : pred
  const original: RgbImage = { width: S, height: S, data: new Uint8Array(image.crop) }
  const reconstruction = denormalize(unpatchify(values, grid), S, mean, std)
  // visible patches pasted: kept -> original crop, removed -> reconstruction
  const visible = new Uint8Array(reconstruction.data)
  const p = grid.patchSize
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const t = Math.floor(y / p) * grid.cols + Math.floor(x / p)
      if (mask[t] === 0) visible.set(original.data.subarray((y * S + x) * 3, (y * S + x) * 3 + 3), (y * S + x) * 3)
    }
  }
  const scale = displayScale(S)
  return {
    original: enlarge(original, scale),
    masked: enlarge(greyRemoved(original, mask, grid.cols, p), scale),
    reconstruction: enlarge(reconstruction, scale),
    reconstructionVisible: enlarge({ width: S, height: S, data: visible }, scale)
  }
}

/** Chooses the selection for the options; runs the keep_scores graph for learned masking. */
async function chooseSelection (model: LoadedModel, image: TransformedImage, options: ReconstructOptions, runOptions: RunOptions): Promise<{ selection: Selection, seed?: number, queueMs: number, inferenceMs: number }> {
  const L = model.manifest.num_patches
  if (options.masking === 'given') return { selection: selectGiven(options.maskedPatches ?? [], L), queueMs: 0, inferenceMs: 0 }
  const K = checkedKeptCount(L, options.maskRatio ?? model.manifest.mask_ratio)
  if (options.masking === 'random') {
    const seed = options.seed ?? randomInt(0, MAX_SEED) // echoed, so the mask can be replayed
    return { selection: selectSeeded(L, K, seed), seed, queueMs: 0, inferenceMs: 0 }
  }
  const { scores, queueMs, inferenceMs } = await keepScoresOf(model, image.pixels, 1, runOptions)
  return { selection: selectTopk(scores[0], K), queueMs, inferenceMs }
}

export async function reconstruct (model: LoadedModel, image: TransformedImage, options: ReconstructOptions, runOptions: RunOptions = {}): Promise<ReconstructionResult> {
  checkReconstructOptions(model, options)
  const chosen = await chooseSelection(model, image, options, runOptions)
  const { selection } = chosen
  const { pred, queueMs, inferenceMs } = await predictPatches(model, image.pixels, selection, runOptions)
  const normPix = model.manifest.norm_pix_loss === true // null only without a decoder, refused above
  const errors = patchErrors(pred, image.pixels, selection.mask, gridOf(model), normPix, model.manifest.norm_pix_eps)
  const L = model.manifest.num_patches
  return {
    masking: options.masking,
    maskRatio: options.masking === 'given' ? (L - selection.numKept) / L : (options.maskRatio ?? model.manifest.mask_ratio),
    seed: chosen.seed,
    selection,
    pred,
    ...errors,
    normPixUsed: normPix,
    panels: buildPanels(model, image, pred, selection.mask),
    queueMs: chosen.queueMs + queueMs,
    inferenceMs: chosen.inferenceMs + inferenceMs
  }
}

/** PNG of each panel. */
export async function encodePanels (panels: PanelImages): Promise<Record<'original' | 'masked' | 'reconstruction' | 'reconstruction_visible', Buffer>> {
  const [original, masked, reconstruction, reconstructionVisible] = await Promise.all([
    encodePng(panels.original), encodePng(panels.masked), encodePng(panels.reconstruction), encodePng(panels.reconstructionVisible)
  ])
  return { original, masked, reconstruction, reconstruction_visible: reconstructionVisible }
}

/** One PNG with the four panels side by side (original, masked, reconstruction, reconstruction + visible). */
export async function encodePanelStrip (panels: PanelImages): Promise<Buffer> {
  return await encodePng(sideBySide([panels.original, panels.masked, panels.reconstruction, panels.reconstructionVisible]))
}

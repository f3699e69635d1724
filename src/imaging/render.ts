/**
 * Pictures for humans: the keep-score heatmap (alone or over the input) and the four reconstruction
 * panels of the MAE demo, encoded as PNG with sharp. Display only: every number the API returns is
 * computed elsewhere; nothing here feeds back into a result.
 *
 * Images arrive as the model sees them: CHW Float32Array (3, H, W), normalised with the bundle's
 * mean/std. Rendering de-normalises, clamps to [0, 1] and enlarges by an integer factor with
 * nearest-neighbour sampling, so every patch stays a crisp square of displayScale * p pixels.
 */
import sharp from 'sharp'

/**
 * Viridis sampled at 17 evenly spaced stops (matplotlib's table, rounded to 8 bits); linear in between.
 * Perceptually uniform and readable by most colour-blind viewers. The scale is fixed, value 0 -> #440154
 * (dark purple) and 1 -> #fde725 (yellow), so one legend fits every heatmap.
 */
const VIRIDIS: ReadonlyArray<readonly [number, number, number]> = [
  [0x44, 0x01, 0x54], [0x48, 0x18, 0x6a], [0x47, 0x2d, 0x7b], [0x42, 0x40, 0x86], [0x3b, 0x52, 0x8b],
  [0x33, 0x63, 0x8d], [0x2c, 0x72, 0x8e], [0x26, 0x82, 0x8e], [0x21, 0x91, 0x8c], [0x1f, 0xa0, 0x88],
  [0x28, 0xae, 0x80], [0x3f, 0xbc, 0x73], [0x5e, 0xc9, 0x62], [0x84, 0xd4, 0x4b], [0xad, 0xdc, 0x30],
  [0xd8, 0xe2, 0x19], [0xfd, 0xe7, 0x25]
]

/** Grey of removed patches in the "masked" panel. */
const REMOVED_GREY = 128
/** Gap between panels of the side-by-side image, white. */
const PANEL_GAP_PX = 4
/** Panels and heatmaps are enlarged to at least this many pixels per side. */
export const MIN_DISPLAY_PX = 256
/** Heatmap opacity in the overlay. */
export const OVERLAY_ALPHA = 0.5

/** value in [0, 1] (clamped; NaN -> 0) -> RGB 0..255 on viridis. */
export function viridis (value: number): [number, number, number] {
  const v = Math.min(1, Math.max(0, Number.isFinite(value) ? value : 0)) * (VIRIDIS.length - 1)
  const i = Math.min(VIRIDIS.length - 2, Math.floor(v))
  const f = v - i
  const a = VIRIDIS[i]
  const b = VIRIDIS[i + 1]
  return [0, 1, 2].map((c) => Math.round(a[c] + (b[c] - a[c]) * f)) as [number, number, number]
}

/** The integer enlargement that brings `side` pixels to at least MIN_DISPLAY_PX. */
export function displayScale (side: number): number {
  return Math.max(1, Math.ceil(MIN_DISPLAY_PX / side))
}

/** An RGB image, HWC, 8 bits per channel. */
export interface RgbImage {
  width: number
  height: number
  /** (H, W, 3) */
  data: Uint8Array
}

/**
 * Normalised CHW (3, H, W) -> RGB HWC bytes: x * std + mean, clamped to [0, 1], times 255, rounded.
 */
export function denormalize (image: Float32Array, side: number, mean: readonly number[], std: readonly number[]): RgbImage {
  const hw = side * side
  if (image.length !== 3 * hw) throw new Error(`denormalize: ${image.length} values for a ${side}x${side} image. This is a bug.`)
  const data = new Uint8Array(hw * 3)
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < hw; i++) {
      const v = image[c * hw + i] * std[c] + mean[c]
      data[i * 3 + c] = Math.round(Math.min(1, Math.max(0, v)) * 255)
    }
  }
  return { width: side, height: side, data }
}

/** Nearest-neighbour enlargement by an integer factor. */
export function enlarge (image: RgbImage, factor: number): RgbImage {
  const width = image.width * factor
  const height = image.height * factor
  const data = new Uint8Array(width * height * 3)
  for (let y = 0; y < height; y++) {
    const sy = Math.floor(y / factor)
    for (let x = 0; x < width; x++) {
      const s = (sy * image.width + Math.floor(x / factor)) * 3
      const o = (y * width + x) * 3
      data[o] = image.data[s]
      data[o + 1] = image.data[s + 1]
      data[o + 2] = image.data[s + 2]
    }
  }
  return { width, height, data }
}

/** Patch values (rows * cols, row-major) -> a heatmap of `rows*cellPx` x `cols*cellPx`, one flat cell per patch. */
export function heatmapImage (values: ArrayLike<number>, rows: number, cols: number, cellPx: number): RgbImage {
  const width = cols * cellPx
  const height = rows * cellPx
  const data = new Uint8Array(width * height * 3)
  for (let y = 0; y < height; y++) {
    const r = Math.floor(y / cellPx)
    for (let x = 0; x < width; x++) {
      const [R, G, B] = viridis(values[r * cols + Math.floor(x / cellPx)])
      const o = (y * width + x) * 3
      data[o] = R
      data[o + 1] = G
      data[o + 2] = B
    }
  }
  return { width, height, data }
}

/** alpha * top + (1 - alpha) * base, same sizes. */
export function blend (base: RgbImage, top: RgbImage, alpha: number): RgbImage {
  if (base.width !== top.width || base.height !== top.height) throw new Error('blend: sizes differ. This is a bug.')
  const data = new Uint8Array(base.data.length)
  for (let i = 0; i < data.length; i++) data[i] = Math.round(alpha * top.data[i] + (1 - alpha) * base.data[i])
  return { width: base.width, height: base.height, data }
}

/** Greys the removed patches (mask 1 = removed) of an image whose side is rows * p. */
export function greyRemoved (image: RgbImage, mask: Uint8Array, cols: number, patchPx: number): RgbImage {
  const data = Uint8Array.from(image.data)
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const t = Math.floor(y / patchPx) * cols + Math.floor(x / patchPx)
      if (mask[t] === 1) data.fill(REMOVED_GREY, (y * image.width + x) * 3, (y * image.width + x) * 3 + 3)
    }
  }
  return { width: image.width, height: image.height, data }
}

/** Images of equal height, left to right with a white gap. */
export function sideBySide (images: RgbImage[], gapPx = PANEL_GAP_PX): RgbImage {
  const height = images[0].height
  const width = images.reduce((w, im) => w + im.width, 0) + gapPx * (images.length - 1)
  const data = new Uint8Array(width * height * 3).fill(255)
  let x0 = 0
  for (const im of images) {
    if (im.height !== height) throw new Error('sideBySide: heights differ. This is a bug.')
    for (let y = 0; y < height; y++) {
      data.set(im.data.subarray(y * im.width * 3, (y + 1) * im.width * 3), (y * width + x0) * 3)
    }
    x0 += im.width + gapPx
  }
  return { width, height, data }
}

export async function encodePng (image: RgbImage): Promise<Buffer> {
  return await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .png()
    .toBuffer()
}

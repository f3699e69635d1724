/**
 * Pillow's resampling (libImaging/Resample.c, the one torchvision's Resize uses on PIL images), ported
 * to TypeScript so the service's preprocessing equals the training's evaluation transform to the 8-bit
 * level. libvips (sharp) resamples differently: measured on test/fixtures/preprocess/, up to 13 levels
 * apart on downscales and a half-pixel shift on upscales (mean 12 levels), far beyond a 0.02 tolerance
 * after normalisation.
 *
 * What Pillow does, and this file repeats:
 * - separable convolution in two passes (the order as Pillow 13 chooses it, see verticalFirst), the
 *   intermediate rounded to 8 bits;
 * - the filter is stretched by the reduction factor (antialiasing): support = filter support * max(1, in/out);
 * - output pixel xx is centred at (xx + 0.5) * in/out; taps from trunc(center - support + 0.5) to
 *   trunc(center + support + 0.5), weights filter((x - center + 0.5) / filterscale), normalised to sum 1,
 *   then turned into fixed point with 22 fractional bits (PRECISION_BITS = 32 - 8 - 2);
 * - sum starts at 0.5 (1 << 21), result = clamp(sum >> 22, 0, 255).
 * Only the requested output window is computed (the centre crop), which gives the same pixels as
 * resizing everything and cropping after, since every output pixel has its own taps.
 *
 * Images are interleaved RGB, (H, W, 3) uint8.
 */

export type ResampleFilter = 'bicubic' | 'bilinear'

const PRECISION_BITS = 22
const ONE = 1 << PRECISION_BITS
const HALF = 1 << (PRECISION_BITS - 1)
const MAX_SUM = 256 * ONE // sums at or above this clip to 255

/** Keys cubic with a = -0.5, as Pillow's BICUBIC. */
function bicubic (x: number): number {
  const a = -0.5
  if (x < 0) x = -x
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a
  return 0
}

function bilinear (x: number): number {
  if (x < 0) x = -x
  return x < 1 ? 1 - x : 0
}

const FILTERS: Record<ResampleFilter, { fn: (x: number) => number, support: number }> = {
  bicubic: { fn: bicubic, support: 2 },
  bilinear: { fn: bilinear, support: 1 }
}

interface Coefficients {
  ksize: number
  /** (outSize, 2): first tap, tap count */
  bounds: Int32Array
  /** (outSize, ksize) fixed-point weights */
  weights: Int32Array
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis. */
function precomputeCoefficients (inSize: number, outSize: number, filter: ResampleFilter): Coefficients {
  const { fn, support: baseSupport } = FILTERS[filter]
  const scale = inSize / outSize
  const filterscale = Math.max(1, scale)
  const support = baseSupport * filterscale
  const ksize = Math.ceil(support) * 2 + 1
  const bounds = new Int32Array(outSize * 2)
  const weights = new Int32Array(outSize * ksize)
  const k = new Float64Array(ksize)
  const ss = 1 / filterscale
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale
    let xmin = Math.trunc(center - support + 0.5)
    if (xmin < 0) xmin = 0
    let xmax = Math.trunc(center + support + 0.5)
    if (xmax > inSize) xmax = inSize
    xmax -= xmin
    let ww = 0
    for (let x = 0; x < xmax; x++) {
      const w = fn((x + xmin - center + 0.5) * ss)
      k[x] = w
      ww += w
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x]
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE)
    }
    bounds[xx * 2] = xmin
    bounds[xx * 2 + 1] = xmax
  }
  return { ksize, bounds, weights }
}

/** Sums are int32, as in Pillow (|sum| < 255 * 1.25 * 2^22 < 2^31), hence Math.imul and | 0 above. */
function clip8 (sum: number): number {
  if (sum >= MAX_SUM) return 255
  if (sum <= 0) return 0
  return sum >> PRECISION_BITS
}

export interface RgbPixels {
  /** (H, W, 3) uint8 */
  data: Uint8Array
  width: number
  height: number
}

/** A window [left, left + width) x [top, top + height) of the resized image. */
export interface OutputWindow {
  left: number
  top: number
  width: number
  height: number
}

/**
 * Pillow 13's choice of pass order (measured: it reproduces Image.resize on 304 random size pairs, see
 * test/imaging/resample.test.ts): vertical first when the height shrinks and the width either grows
 * or shrinks by less than half as many pixels as the height; horizontal first otherwise.
 */
export function verticalFirst (inW: number, inH: number, outW: number, outH: number): boolean {
  return inH > outH && (inW < outW || 2 * (inW - outW) < inH - outH)
}

interface Plane {
  /** (height, width, 3) uint8 */
  data: Uint8Array
  width: number
  height: number
}

/**
 * Horizontal pass: rows [y0, y0 + rows) of `img`, output columns [x0, x0 + cols) of the resized width.
 * `colOffset` is the source column that img's column 0 stands for. No coefficients: columns are copied.
 */
function passH (img: Plane, y0: number, rows: number, c: Coefficients | undefined, x0: number, cols: number, colOffset: number): Plane {
  const out = new Uint8Array(rows * cols * 3)
  const src = img.data
  if (c === undefined) {
    for (let r = 0; r < rows; r++) {
      const s = ((y0 + r) * img.width + x0 - colOffset) * 3
      out.set(src.subarray(s, s + cols * 3), r * cols * 3)
    }
    return { data: out, width: cols, height: rows }
  }
  const { bounds, weights, ksize } = c // locals: the loops below are the hot path of preprocessing
  for (let r = 0; r < rows; r++) {
    const rowBase = (y0 + r) * img.width * 3
    for (let j = 0; j < cols; j++) {
      const o = (r * cols + j) * 3
      const xx = x0 + j
      const n = bounds[xx * 2 + 1]
      const kBase = xx * ksize
      let s = rowBase + (bounds[xx * 2] - colOffset) * 3
      let s0 = HALF
      let s1 = HALF
      let s2 = HALF
      for (let x = 0; x < n; x++) {
        const w = weights[kBase + x]
        s0 = (s0 + Math.imul(src[s], w)) | 0
        s1 = (s1 + Math.imul(src[s + 1], w)) | 0
        s2 = (s2 + Math.imul(src[s + 2], w)) | 0
        s += 3
      }
      out[o] = clip8(s0)
      out[o + 1] = clip8(s1)
      out[o + 2] = clip8(s2)
    }
  }
  return { data: out, width: cols, height: rows }
}

/**
 * Vertical pass: output rows [y0, y0 + rows) of the resized height, columns [x0, x0 + cols) of `img`.
 * `rowOffset` is the source row that img's row 0 stands for. No coefficients: rows are copied.
 */
function passV (img: Plane, c: Coefficients | undefined, y0: number, rows: number, x0: number, cols: number, rowOffset: number): Plane {
  const out = new Uint8Array(rows * cols * 3)
  const src = img.data
  const stride = img.width * 3
  for (let i = 0; i < rows; i++) {
    const yy = y0 + i
    if (c === undefined) {
      out.set(src.subarray((yy - rowOffset) * stride + x0 * 3, (yy - rowOffset) * stride + (x0 + cols) * 3), i * cols * 3)
      continue
    }
    const ymin = c.bounds[yy * 2] - rowOffset
    const n = c.bounds[yy * 2 + 1]
    const kBase = yy * c.ksize
    const weights = c.weights
    for (let j = 0; j < cols; j++) {
      let s0 = HALF
      let s1 = HALF
      let s2 = HALF
      let s = ymin * stride + (x0 + j) * 3
      for (let y = 0; y < n; y++) {
        const w = weights[kBase + y]
        s0 = (s0 + Math.imul(src[s], w)) | 0
        s1 = (s1 + Math.imul(src[s + 1], w)) | 0
        s2 = (s2 + Math.imul(src[s + 2], w)) | 0
        s += stride
      }
      const o = (i * cols + j) * 3
      out[o] = clip8(s0)
      out[o + 1] = clip8(s1)
      out[o + 2] = clip8(s2)
    }
  }
  return { data: out, width: cols, height: rows }
}

/** The source index range [first, last) that the taps of outputs [o0, o0 + count) read. */
function tapRange (c: Coefficients | undefined, o0: number, count: number): [number, number] {
  if (c === undefined) return [o0, o0 + count]
  let first = Infinity
  let last = -Infinity
  for (let o = o0; o < o0 + count; o++) {
    first = Math.min(first, c.bounds[o * 2])
    last = Math.max(last, c.bounds[o * 2] + c.bounds[o * 2 + 1])
  }
  return [first, last]
}

/**
 * Resizes `src` to outWidth x outHeight as Pillow's Image.resize(filter) does and returns only `window`
 * of the result (the whole image when omitted). (H, W, 3) -> (window.height, window.width, 3).
 */
export function resampleRgb (src: RgbPixels, outWidth: number, outHeight: number, filter: ResampleFilter,
  window: OutputWindow = { left: 0, top: 0, width: outWidth, height: outHeight }): RgbPixels {
  const { left, top, width: winW, height: winH } = window
  if (left < 0 || top < 0 || left + winW > outWidth || top + winH > outHeight) {
    throw new Error(`resample window ${JSON.stringify(window)} is outside ${outWidth} x ${outHeight}. This is a bug.`)
  }
  const horiz = outWidth !== src.width ? precomputeCoefficients(src.width, outWidth, filter) : undefined
  const vert = outHeight !== src.height ? precomputeCoefficients(src.height, outHeight, filter) : undefined
  if (horiz !== undefined && vert !== undefined && verticalFirst(src.width, src.height, outWidth, outHeight)) {
    const [colFirst, colLast] = tapRange(horiz, left, winW) // source columns the window needs
    const temp = passV(src, vert, top, winH, colFirst, colLast - colFirst, 0) // (winH, colLast - colFirst, 3)
    return passH(temp, 0, winH, horiz, left, winW, colFirst) // (winH, winW, 3)
  }
  const [rowFirst, rowLast] = tapRange(vert, top, winH) // source rows the window needs
  const temp = passH(src, rowFirst, rowLast - rowFirst, horiz, left, winW, 0) // (rows, winW, 3)
  return passV(temp, vert, top, winH, 0, winW, rowFirst) // (winH, winW, 3)
}

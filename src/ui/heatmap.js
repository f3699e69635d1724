// @ts-check
// Drawing of patch grids on canvases: the keep-score heatmap over the model's view of the image,
// the binary mask, the per-patch error grids and the colour legend. Display only: every number
// drawn here comes from the API (or from top-k over the API's keep scores, see top-k.js).

// Viridis, sampled at 11 stops: perceptually uniform and readable by most colour-blind viewers.
const VIRIDIS = [
  [68, 1, 84], [72, 36, 117], [65, 68, 135], [53, 95, 141], [42, 120, 142], [33, 145, 140],
  [34, 168, 132], [68, 191, 112], [122, 209, 81], [189, 223, 38], [253, 231, 37]
]

/**
 * Colour of a value in [0, 1] on the viridis scale (linear between stops).
 * @param {number} value clamped to [0, 1]
 * @returns {[number, number, number]} RGB 0..255
 */
export function viridis (value) {
  const v = Math.min(1, Math.max(0, Number.isFinite(value) ? value : 0)) * (VIRIDIS.length - 1)
  const i = Math.min(VIRIDIS.length - 2, Math.floor(v))
  const f = v - i
  const a = VIRIDIS[i]
  const b = VIRIDIS[i + 1]
  return /** @type {[number, number, number]} */ ([0, 1, 2].map((c) => Math.round(a[c] + (b[c] - a[c]) * f)))
}

/**
 * Paints a grid of values over an optional base image.
 * @param {HTMLCanvasElement} canvas drawn at its own width x height
 * @param {(number | null)[][]} grid rows x cols; null cells are left unpainted (base shows through)
 * @param {{base?: CanvasImageSource | null, opacity?: number, range?: [number, number], gridLines?: boolean}} [options]
 *   range maps values to the colour scale (default [0, 1]); opacity 0 shows only the base image
 */
export function drawGrid (canvas, grid, options = {}) {
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'))
  const { width, height } = canvas
  const rows = grid.length
  const cols = grid[0]?.length ?? 0
  const [lo, hi] = options.range ?? [0, 1]
  const opacity = options.opacity ?? 1
  ctx.clearRect(0, 0, width, height)
  if (options.base) {
    ctx.imageSmoothingEnabled = true
    ctx.drawImage(options.base, 0, 0, width, height)
  } else {
    ctx.fillStyle = '#888'
    ctx.fillRect(0, 0, width, height)
  }
  const cellW = width / cols
  const cellH = height / rows
  ctx.globalAlpha = opacity
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const value = grid[r][c]
      if (value === null || value === undefined) continue
      const [R, G, B] = viridis(hi > lo ? (value - lo) / (hi - lo) : 0.5)
      ctx.fillStyle = `rgb(${R},${G},${B})`
      // Whole-pixel edges so neighbouring cells do not leave hairline seams.
      const x0 = Math.round(c * cellW)
      const y0 = Math.round(r * cellH)
      ctx.fillRect(x0, y0, Math.round((c + 1) * cellW) - x0, Math.round((r + 1) * cellH) - y0)
    }
  }
  ctx.globalAlpha = 1
  if (options.gridLines) drawGridLines(ctx, rows, cols, width, height)
}

/**
 * Draws the binary mask: removed patches (mask = 1) greyed out and hatched, kept ones show the image.
 * @param {HTMLCanvasElement} canvas
 * @param {number[][]} mask rows x cols, 1 = removed
 * @param {CanvasImageSource | null} base
 */
export function drawMask (canvas, mask, base) {
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'))
  const { width, height } = canvas
  const rows = mask.length
  const cols = mask[0]?.length ?? 0
  ctx.clearRect(0, 0, width, height)
  if (base) ctx.drawImage(base, 0, 0, width, height)
  else { ctx.fillStyle = '#ddd'; ctx.fillRect(0, 0, width, height) }
  const cellW = width / cols
  const cellH = height / rows
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (mask[r][c] !== 1) continue
      const x0 = Math.round(c * cellW)
      const y0 = Math.round(r * cellH)
      const w = Math.round((c + 1) * cellW) - x0
      const h = Math.round((r + 1) * cellH) - y0
      ctx.fillStyle = 'rgba(40, 40, 40, 0.85)'
      ctx.fillRect(x0, y0, w, h)
      ctx.strokeStyle = 'rgba(255, 255, 255, 0.25)'
      ctx.beginPath()
      ctx.moveTo(x0, y0 + h)
      ctx.lineTo(x0 + w, y0)
      ctx.stroke()
    }
  }
  drawGridLines(ctx, rows, cols, width, height)
}

/**
 * @param {CanvasRenderingContext2D} ctx
 * @param {number} rows @param {number} cols @param {number} width @param {number} height
 */
function drawGridLines (ctx, rows, cols, width, height) {
  ctx.strokeStyle = 'rgba(255, 255, 255, 0.35)'
  ctx.lineWidth = 1
  ctx.beginPath()
  for (let c = 1; c < cols; c++) {
    const x = Math.round((c * width) / cols) + 0.5
    ctx.moveTo(x, 0); ctx.lineTo(x, height)
  }
  for (let r = 1; r < rows; r++) {
    const y = Math.round((r * height) / rows) + 0.5
    ctx.moveTo(0, y); ctx.lineTo(width, y)
  }
  ctx.stroke()
}

/**
 * Horizontal colour bar for a legend.
 * @param {HTMLCanvasElement} canvas
 */
export function drawLegend (canvas) {
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'))
  for (let x = 0; x < canvas.width; x++) {
    const [R, G, B] = viridis(x / Math.max(1, canvas.width - 1))
    ctx.fillStyle = `rgb(${R},${G},${B})`
    ctx.fillRect(x, 0, 1, canvas.height)
  }
}

/**
 * The model's view of a picture for display: shorter side resized to `resize_shorter_side`, then a
 * centre crop of `center_crop`, as the API's eval transform does. The browser's resampling is not
 * the service's bicubic, so this is for the eye only; no number is computed from it.
 * @param {ImageBitmap | HTMLImageElement} image
 * @param {{resize_shorter_side: number, center_crop: number}} transform
 * @returns {HTMLCanvasElement}
 */
export function modelView (image, transform) {
  const w = image.width
  const h = image.height
  const scale = transform.resize_shorter_side / Math.min(w, h)
  const crop = transform.center_crop / scale // crop side in source pixels
  const canvas = document.createElement('canvas')
  canvas.width = transform.center_crop
  canvas.height = transform.center_crop
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'))
  ctx.imageSmoothingQuality = 'high'
  ctx.drawImage(image, (w - crop) / 2, (h - crop) / 2, crop, crop, 0, 0, canvas.width, canvas.height)
  return canvas
}

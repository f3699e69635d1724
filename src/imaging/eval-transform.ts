/**
 * The bundle's evaluation transform (manifest.eval_transform) with sharp, reproducing torchvision's
 * Resize(shorter side, bicubic, antialias) + CenterCrop + ToTensor + Normalize on a PIL image:
 * RGB, EXIF orientation, first frame, resize of the shorter side (torchvision's size rule: the longer side
 * becomes floor(size * long / short)), centre crop with Python's round-half-to-even offsets, [0, 1],
 * (x - mean) / std, layout CHW float32.
 * sharp decodes (full resolution, oriented, RGB); the resize and crop are Pillow's own algorithm
 * (src/imaging/resample.ts), computed for the crop window only: sharp's resize differs from PIL by up to
 * 13 levels on downscales and by a half-pixel shift on upscales, while this matches torchvision's output
 * exactly on test/fixtures/preprocess/ (test/imaging/eval-transform.test.ts).
 */
import type { EvalTransform } from '../bundles/manifest.js'
import type { Metrics } from '../metrics.js'
import { decodeCostBytes, toRgb, type ImageSource } from './decode.js'
import { AdmissionTurns, DecodeAdmission } from './decode-admission.js'
import { resampleRgb } from './resample.js'
import { TransformPool } from './transform-pool.js'

export interface TransformedImage {
  /** (3, S, S) float32, normalised, channel first; S = center_crop */
  pixels: Float32Array
  /** the S x S x 3 uint8 crop before normalisation (for panels and overlays) */
  crop: Buffer
  size: number
  /** the resize that ran (an upscale is always 'pillow') */
  resize: ResizeBackend
}

/** Python's round(): halves go to the even neighbour (torchvision's crop offsets use it). */
export function roundHalfEven (x: number): number {
  const r = Math.round(x)
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r
}

/** torchvision Resize(int) output size for a (width, height) image. */
export function resizedSize (width: number, height: number, shorter: number): { width: number, height: number } {
  if (width <= height) return { width: shorter, height: Math.floor(shorter * height / width) }
  return { width: Math.floor(shorter * width / height), height: shorter }
}

/**
 * How the eval transform resizes (config preprocessResize, set once at start-up like sharp.concurrency):
 * - 'pillow' (default): Pillow's algorithm in TypeScript on the fully decoded image; equals the training
 *   transform (0 difference on the parity fixtures) at about 3 to 4 times the CPU of 'sharp' per photo,
 *   part of it on the main thread;
 * - 'sharp', the fast path: libvips resize (cubic/linear kernel) then the crop. With fastShrinkOnLoad
 *   off, sharp still decodes a JPEG at 1/2, 1/4 or 1/8 scale when the target is far smaller, but keeps at
 *   least a factor of two for the cubic filter (sharp's pipeline.cc), so a 12 MP photo is never decoded
 *   whole. Cheaper, but up to about 0.9 apart after normalisation (mean about 0.01) on downscales; the
 *   embeddings stay within cosine 0.9998 of the exact ones on the 30 photos (bench:preprocess).
 *   Upscales always use 'pillow' (libvips shifts them by half a pixel). 'pillow' never shrinks on load.
 */
export type ResizeBackend = 'pillow' | 'sharp'
let resizeBackend: ResizeBackend = 'pillow'

export function setResizeBackend (backend: ResizeBackend): void {
  resizeBackend = backend
}

export function getResizeBackend (): ResizeBackend {
  return resizeBackend
}

/**
 * Process-wide, like sharp's own thread pool: the decode admission (decode-admission.ts; the budget is
 * per process) and the worker threads of the exact transform (transform-pool.ts). app.ts configures them
 * from the settings; without configuration (scripts, unit tests) decodes are not admitted and the
 * resampler runs inline.
 */
let admission: DecodeAdmission | undefined
let pool: TransformPool | undefined

export function configureImaging (options: { resizeBackend: ResizeBackend, admission?: DecodeAdmission, resampleWorkers?: number }): void {
  resizeBackend = options.resizeBackend
  admission = options.admission
  const size = options.resampleWorkers ?? 0
  if (size === 0) { pool = undefined; return } // inline (a replaced pool's idle workers do not hold the process)
  if (pool === undefined || pool.size !== size) pool = pools.get(size) ?? new TransformPool(size)
  pools.set(size, pool)
}

/** every pool made, by size, so that reconfiguring (tests, several apps in one process) reuses them */
const pools = new Map<number, TransformPool>()

/**
 * The eval transform of one image, admitted first (decode-admission.ts) when admission is configured:
 * 503 DECODE_BUDGET_EXCEEDED when its decode memory does not fit the budget; `signal` and `deadline` end a wait for a slot.
 */
export async function applyEvalTransform (source: ImageSource, transform: EvalTransform, metrics?: Metrics, signal?: AbortSignal, deadline?: number): Promise<TransformedImage> {
  if (admission === undefined) return await transformImage(source, transform, metrics)
  return await admission.run(decodeCostBytes(source), async () => await transformImage(source, transform, metrics), signal, deadline)
}

/**
 * The eval transform for the images of one request: each call is applyEvalTransform, taking this
 * request's turns at the admission (decode-admission.ts AdmissionTurns), so a request larger than the
 * budget is decoded in turns instead of refused. Call it for every image at once (e.g. mapItemsAsync).
 */
export function requestEvalTransform (transform: EvalTransform, metrics?: Metrics, signal?: AbortSignal, deadline?: number): (source: ImageSource) => Promise<TransformedImage> {
  const turns = admission === undefined ? undefined : new AdmissionTurns(admission.limits, signal)
  return async (source) => {
    if (turns === undefined) return await applyEvalTransform(source, transform, metrics, signal, deadline)
    return await turns.run(decodeCostBytes(source), async () => await applyEvalTransform(source, transform, metrics, signal, deadline))
  }
}

/** The process's decode admission, when configured (tests hold its budget with it). */
export function decodeAdmission (): DecodeAdmission | undefined {
  return admission
}

async function transformImage (source: ImageSource, transform: EvalTransform, metrics?: Metrics): Promise<TransformedImage> {
  const t0 = performance.now()
  const target = resizedSize(source.width, source.height, transform.resize_shorter_side)
  const S = transform.center_crop
  if (target.width < S || target.height < S) throw new Error(`resized image ${target.width} x ${target.height} is smaller than the crop ${S}; the manifest's resize_shorter_side must be >= center_crop. This is a bug.`)
  const top = roundHalfEven((target.height - S) / 2)
  const left = roundHalfEven((target.width - S) / 2)
  const downscale = target.width <= source.width && target.height <= source.height
  let rgb: { data: Uint8Array, width: number, height: number } // (S, S, 3): the centre-crop window of the resized image
  let tDecoded: number
  if (resizeBackend === 'sharp' && downscale) {
    rgb = await toRgb(source.pipeline()
      .resize(target.width, target.height, { fit: 'fill', kernel: transform.interpolation === 'bicubic' ? 'cubic' : 'linear', fastShrinkOnLoad: false })
      .extract({ left, top, width: S, height: S })) // extract after resize: crops the resized image
    tDecoded = performance.now()
  } else if (pool !== undefined) { // decode and resample on a worker thread: nothing full-size on this one
    rgb = await pool.transform(source.bytes, source.maxImagePixels, target.width, target.height, transform.interpolation, { left, top, width: S, height: S })
    tDecoded = performance.now() // (the stages run together there: 'decode' holds both)
  } else {
    const decoded = await toRgb(source.pipeline()) // (H, W, 3) uint8, oriented, first frame
    tDecoded = performance.now()
    rgb = resampleRgb(decoded, target.width, target.height, transform.interpolation, { left, top, width: S, height: S })
  }
  const t1 = performance.now()
  const pixels = new Float32Array(3 * S * S) // (3, S, S)
  const crop = Buffer.alloc(S * S * 3) // (S, S, 3)
  const scale = [0, 1, 2].map((c) => 1 / (255 * transform.std[c]))
  const shift = [0, 1, 2].map((c) => transform.mean[c] / transform.std[c])
  const plane = S * S
  for (let y = 0; y < S; y++) {
    let src = y * S * 3
    for (let x = 0; x < S; x++) {
      const o = y * S + x
      for (let c = 0; c < 3; c++) {
        const v = rgb.data[src + c]
        crop[o * 3 + c] = v
        pixels[c * plane + o] = v * scale[c] - shift[c]
      }
      src += 3
    }
  }
  if (metrics !== undefined) {
    metrics.preprocessDuration.observe({ stage: 'decode' }, (tDecoded - t0) / 1000)
    metrics.preprocessDuration.observe({ stage: 'resize' }, (t1 - tDecoded) / 1000)
    metrics.preprocessDuration.observe({ stage: 'normalize' }, (performance.now() - t1) / 1000)
    metrics.imagePixels.observe(source.width * source.height)
  }
  return { pixels, crop, size: S, resize: resizeBackend === 'sharp' && downscale ? 'sharp' : 'pillow' }
}

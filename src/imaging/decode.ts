/**
 * Decoding of untrusted image bytes with sharp, with every limit checked before pixels are decoded:
 * byte size, format allow-list, declared pixel count (the PNG that declares 50000 x 50000 never gets
 * decoded), shortest side. Decoding itself fails on truncated or corrupt data (failOn: 'error'),
 * applies the EXIF orientation and keeps only the first frame of an animation.
 * Every violation is an ApiError with its own IMAGE_* code, never a 500.
 */
import sharp from 'sharp'
import { ApiError } from '../errors.js'

export interface ImageLimits {
  maxImageBytes: number
  maxImagePixels: number
  minImageSide: number
  allowedFormats: readonly string[]
}

export interface ImageSource {
  bytes: Buffer
  /** the pixel limit the pipeline enforces */
  maxImagePixels: number
  /** sharp's format name: jpeg, png, webp, gif, tiff, ... */
  format: string
  /** size after EXIF orientation, first frame only */
  width: number
  height: number
  /** bytes per pixel the decoder's whole frame takes when it holds one (decodeCostBytes); 0 when it streams */
  heldBytesPerPixel: number
  /** a fresh sharp pipeline on the bytes: limits set, EXIF-oriented, first frame */
  pipeline: () => sharp.Sharp
}

export interface RgbImage {
  /** H x W x 3 uint8, row-major, channel last */
  data: Buffer
  width: number
  height: number
}

/** The sharp pipeline every decode starts from (also built in the resample worker, from the same bytes). */
export function decodePipeline (bytes: Buffer | Uint8Array, maxImagePixels: number): sharp.Sharp {
  return sharp(bytes, {
    limitInputPixels: maxImagePixels,
    failOn: 'error', // truncated or corrupt data is an error, not a grey tail
    autoOrient: true,
    // the stored RGB values, as PIL's convert('RGB') in training: sharp would otherwise convert an embedded
    // ICC profile (e.g. Display P3) to sRGB, up to 117 levels apart (test/imaging/eval-transform.test.ts)
    ignoreIcc: true,
    pages: 1, // first frame of an animation
    page: 0
  })
}

/** Reads the header only and checks every limit. Decoding happens later, in the caller's pipeline. */
export async function inspectImage (bytes: Buffer, limits: ImageLimits): Promise<ImageSource> {
  if (bytes.length === 0) throw new ApiError('IMAGE_MISSING', 'an image is empty (0 bytes)')
  if (bytes.length > limits.maxImageBytes) {
    throw new ApiError('IMAGE_TOO_LARGE', `an image has ${bytes.length} bytes; the limit is ${limits.maxImageBytes}`)
  }
  const pipeline = (): sharp.Sharp => decodePipeline(bytes, limits.maxImagePixels)
  let meta: sharp.Metadata
  try {
    meta = await sharp(bytes, { limitInputPixels: false, pages: 1 }).metadata()
  } catch (error) {
    throw new ApiError('IMAGE_UNREADABLE', `not a readable image: ${sharpMessage(error)}`)
  }
  const format = meta.format as string | undefined
  if (format === undefined || !limits.allowedFormats.includes(format)) {
    throw new ApiError('IMAGE_FORMAT_UNSUPPORTED', `image format ${format ?? 'unknown'} is not allowed; allowed: ${limits.allowedFormats.join(', ')}`)
  }
  const rawWidth = meta.width ?? 0
  const rawHeight = meta.pageHeight ?? meta.height ?? 0
  if (rawWidth * rawHeight > limits.maxImagePixels) {
    throw new ApiError('IMAGE_TOO_MANY_PIXELS', `an image declares ${rawWidth} x ${rawHeight} = ${rawWidth * rawHeight} pixels; the limit is ${limits.maxImagePixels}`)
  }
  const swap = (meta.orientation ?? 1) >= 5 // EXIF orientations 5..8 rotate by 90 degrees
  const width = swap ? rawHeight : rawWidth
  const height = swap ? rawWidth : rawHeight
  if (Math.min(width, height) < limits.minImageSide) {
    throw new ApiError('IMAGE_TOO_SMALL', `an image is ${width} x ${height}; the shortest side must be at least ${limits.minImageSide} pixels`)
  }
  return { bytes, maxImagePixels: limits.maxImagePixels, format, width, height, heldBytesPerPixel: heldBytesPerPixel(format, meta), pipeline }
}

const SAMPLE_BYTES: Record<string, number> = { uchar: 1, char: 1, ushort: 2, short: 2, uint: 4, int: 4, float: 4, complex: 8, double: 8, dpcomplex: 16 }

/**
 * Bytes per pixel that decoding holds beyond its RGB output, from the header. libvips streams most
 * decodes (a 40 MP 16-bit RGBA PNG adds 0.8 byte per pixel at peak), but holds a whole frame when
 * - the EXIF orientation rotates (3 to 8): sharp copies the decoded frame to memory, at its stored bands
 *   and depth (sharp's pipeline.cc, StaySequential), e.g. 8 bytes per pixel for 16-bit RGBA;
 * - the format is WebP or GIF, whose decoders write whole RGBA frames (5.1-5.5 and 4.5 bytes per pixel).
 * Figures: peak RSS of one 8000 x 5000 decode (toRgb) per format, in 2026-12-03's review of issue 11.
 */
function heldBytesPerPixel (format: string, meta: sharp.Metadata): number {
  const rotates = (meta.orientation ?? 1) >= 3
  const frame = rotates ? (meta.channels ?? 4) * (SAMPLE_BYTES[meta.depth ?? ''] ?? 8) : 0
  const whole = format === 'webp' ? 6 : format === 'gif' ? 5 : 0
  return frame + whole
}

/**
 * The memory one decode takes at its peak, what the decode admission counts (decode-admission.ts):
 * the (H, W, 3) uint8 output plus whatever frame the decoder holds whole (heldBytesPerPixel). Counting
 * 3 bytes per pixel alone let a 40 MP EXIF-rotated 16-bit RGBA PNG (0.5 MB of bytes) take 441 MB
 * against 120 MB admitted, and a 1.6 KB WebP 324 MB.
 */
export function decodeCostBytes (source: Pick<ImageSource, 'width' | 'height' | 'heldBytesPerPixel'>): number {
  return source.width * source.height * (3 + source.heldBytesPerPixel)
}

/** Runs a pipeline to 8-bit RGB pixels, mapping decode failures to IMAGE_* errors. */
export async function toRgb (pipeline: sharp.Sharp): Promise<RgbImage> {
  try {
    const { data, info } = await pipeline.removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true })
    if (info.channels !== 3) throw new Error(`decoded ${info.channels} channels instead of 3. This is a bug.`)
    return { data, width: info.width, height: info.height }
  } catch (error) {
    if (error instanceof Error && error.message.endsWith('This is a bug.')) throw error
    const message = sharpMessage(error)
    if (/pixel limit/i.test(message)) throw new ApiError('IMAGE_TOO_MANY_PIXELS', message)
    throw new ApiError('IMAGE_UNREADABLE', `the image could not be decoded (truncated or corrupt?): ${message}`)
  }
}

/** The whole image as RGB after orientation (first frame). */
export async function decodeRgb (source: ImageSource): Promise<RgbImage> {
  return toRgb(source.pipeline())
}

function sharpMessage (error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0].trim()
}

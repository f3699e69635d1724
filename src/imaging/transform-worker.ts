/**
 * Worker thread of the transform pool (transform-pool.ts): decodes one image with sharp (the same
 * pipeline as the main thread, decode.ts) and runs Pillow's resampler (resample.ts) on it, then sends
 * back only the crop window. The full-size pixels (up to 120 MB for 40 MP) never reach the main thread:
 * handing them over cost the event loop 0.7 s per 40 MP image, more than the resample it was to avoid.
 */
import { parentPort } from 'node:worker_threads'
import { ApiError, type ErrorCode } from '../errors.js'
import { decodePipeline, toRgb } from './decode.js'
import { resampleRgb, type ResampleFilter } from './resample.js'

export interface TransformJob {
  id: number
  /** the encoded image */
  bytes: Uint8Array
  maxImagePixels: number
  outWidth: number
  outHeight: number
  filter: ResampleFilter
  window: { left: number, top: number, width: number, height: number }
}

export type TransformReply =
  | { id: number, ok: true, data: Uint8Array, width: number, height: number }
  | { id: number, ok: false, code?: ErrorCode, message: string }

parentPort?.on('message', (job: TransformJob) => {
  void (async () => {
    try {
      const decoded = await toRgb(decodePipeline(job.bytes, job.maxImagePixels))
      const out = resampleRgb(decoded, job.outWidth, job.outHeight, job.filter, job.window)
      const data = Uint8Array.from(out.data)
      parentPort?.postMessage({ id: job.id, ok: true, data, width: out.width, height: out.height } satisfies TransformReply, [data.buffer as ArrayBuffer])
    } catch (error) {
      const code = error instanceof ApiError ? error.code : undefined
      parentPort?.postMessage({ id: job.id, ok: false, code, message: error instanceof Error ? error.message : String(error) } satisfies TransformReply)
    }
  })()
})

/**
 * POST /v1/mask-maps: the learned keep_score of every patch of one image, the top-K mask for a ratio,
 * summary figures, the sha256s and the preprocessing (for audit trails), and an optional heatmap.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ApiError, type ErrorCode } from '../../errors.js'
import { computeMaskMap } from '../../features/mask-map.js'
import { inspectImage } from '../../imaging/decode.js'
import { applyEvalTransform, type TransformedImage } from '../../imaging/eval-transform.js'
import type { LoadedModel } from '../../bundles/model-registry.js'
import { readImageRequest } from '../ingestion/image-request.js'
import { RAW_IMAGE_MEDIA_TYPES } from '../ingestion/body-parsers.js'
import { COMMON_ERRORS, IMAGE_ERRORS, errorResponses } from '../schemas/common.js'
import {
  MaskMapsJsonRequestSchema, MaskMapsMultipartSchema, MaskMapsOptionsSchema, MaskMapsResponseSchema,
  type MaskMapsOptions, type MaskMapsResponse
} from '../schemas/mask-maps.js'
import { setTimingHeaders } from './timing-headers.js'

export const MASK_MAP_ERRORS: ErrorCode[] = [...COMMON_ERRORS, ...IMAGE_ERRORS, 'BATCH_TOO_LARGE', 'MODEL_NO_MASKING_MODULE', 'MASK_RATIO_INVALID']

export default async function maskMapsRoutes (app: FastifyInstance): Promise<void> {
  app.post('/v1/mask-maps', {
    schema: {
      tags: ['masks'],
      summary: 'Learned mask map of one image',
      description: 'Runs the masking module (keep_scores graph) on one image. keep_score in (0, 1) per patch, high = keep; mask_probability = 1 - keep_score; ' +
        'mask (1 = removed) keeps the K = floor(L * (1 - mask_ratio)) highest-scoring patches, ties to the lower index. A plain MAE bundle has no masking module: 422 MODEL_NO_MASKING_MODULE. ' +
        'The image comes as JSON `input`, one multipart file part, or a raw image body (image/*) with the options in the query string.',
      querystring: MaskMapsOptionsSchema,
      body: {
        content: {
          'application/json': { schema: MaskMapsJsonRequestSchema },
          'multipart/form-data': { schema: MaskMapsMultipartSchema },
          ...Object.fromEntries(RAW_IMAGE_MEDIA_TYPES.map((t) => [t, { schema: { type: 'string', format: 'binary' } }]))
        }
      },
      response: { 200: MaskMapsResponseSchema, ...errorResponses(MASK_MAP_ERRORS) }
    }
  }, createMaskMap)
}

/** values (rows * cols, row-major) -> rows x cols nested arrays */
export function toGrid<T> (values: ArrayLike<number>, rows: number, cols: number, map: (v: number, t: number) => T): T[][] {
  return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => map(values[r * cols + c], r * cols + c)))
}

/** Decodes the request's one image and applies the model's eval transform. */
export async function readOneImage (app: FastifyInstance, request: FastifyRequest, optionsSchema: typeof MaskMapsOptionsSchema | object): Promise<{ options: Record<string, unknown>, load: (model: LoadedModel) => Promise<{ image: TransformedImage, input: { format: string, width: number, height: number } }> }> {
  const config = app.config
  const { images, options } = await readImageRequest(request, { optionsSchema: optionsSchema as typeof MaskMapsOptionsSchema, maxImages: 1, maxImageBytes: config.maxImageBytes })
  return {
    options,
    load: async (model) => {
      const source = await inspectImage(images[0], config)
      const image = await applyEvalTransform(source, model.manifest.eval_transform, app.metrics, request.clientSignal, request.deadline)
      return { image, input: { format: source.format, width: source.width, height: source.height } }
    }
  }
}

async function createMaskMap (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply): Promise<MaskMapsResponse> {
  const { options: raw, load } = await readOneImage(this, request, MaskMapsOptionsSchema)
  const options = raw as MaskMapsOptions
  const model = this.models.get(options.model)
  if (!model.hasGraph('keep_scores')) { // before decoding: the answer cannot depend on the image
    throw new ApiError('MODEL_NO_MASKING_MODULE', `model ${model.id} (method ${model.manifest.method}) has no learned masking module; mask maps need a clmae bundle`)
  }
  const { image, input } = await load(model)
  const result = await computeMaskMap(model, image, { maskRatio: options.mask_ratio, heatmap: options.heatmap ?? 'none' },
    { signal: request.clientSignal, deadline: request.deadline })
  setTimingHeaders(reply, result.queueMs, result.inferenceMs)
  const { rows, cols } = result
  return {
    model: model.id,
    model_sha256: model.sha256.keep_scores as string,
    graph_sha256: model.sha256 as Record<string, string>,
    grid: { rows, cols },
    patch_size: result.patchSize,
    mask_ratio: result.maskRatio,
    num_kept: result.numKept,
    keep_score: toGrid(result.keepScores, rows, cols, (v) => v),
    mask_probability: toGrid(result.keepScores, rows, cols, (v) => 1 - v),
    mask: toGrid(result.mask, rows, cols, (v) => v),
    summary: result.summary,
    preprocessing: { ...model.manifest.eval_transform, resize: image.resize, input },
    ...(result.heatmapPng !== undefined ? { heatmap_png: result.heatmapPng.toString('base64') } : {})
  }
}

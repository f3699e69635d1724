/**
 * POST /v1/reconstructions: the MAE demo for one image under a learned, seeded random or given mask:
 * four panels (JSON with base64 PNGs, or one PNG strip with Accept: image/png) and the per-patch error grid.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ErrorCode } from '../../errors.js'
import { checkReconstructOptions, encodePanels, encodePanelStrip, reconstruct, type ReconstructOptions } from '../../features/reconstruct.js'
import { maskedIndices } from '../../features/selection.js'
import { RAW_IMAGE_MEDIA_TYPES } from '../ingestion/body-parsers.js'
import { COMMON_ERRORS, IMAGE_ERRORS, errorResponses } from '../schemas/common.js'
import {
  ReconstructionsJsonRequestSchema, ReconstructionsMultipartSchema, ReconstructionsOptionsSchema, ReconstructionsResponseSchema,
  type ReconstructionsOptions, type ReconstructionsResponse
} from '../schemas/reconstructions.js'
import { readOneImage, toGrid } from './mask-maps.js'
import { setTimingHeaders } from './timing-headers.js'

export const RECONSTRUCTION_ERRORS: ErrorCode[] = [
  ...COMMON_ERRORS, ...IMAGE_ERRORS, 'BATCH_TOO_LARGE', 'MODEL_NO_MASKING_MODULE', 'MODEL_NO_DECODER', 'MASK_RATIO_INVALID', 'MASK_PATCHES_MISSING',
  'MASK_PATCH_OUT_OF_RANGE', 'MASK_PATCH_DUPLICATE', 'MASK_PATCH_COUNT', 'MASK_OPTION_CONFLICT'
]

export default async function reconstructionsRoutes (app: FastifyInstance): Promise<void> {
  app.post('/v1/reconstructions', {
    schema: {
      tags: ['masks'],
      summary: 'Reconstruct one image from a subset of its patches',
      description: 'Masks one image (learned top-K of keep_score, seeded random, or given patch indices; any mask ratio that keeps and removes at least one patch), runs the encoder on the kept patches and the decoder on all L positions, and returns the MAE demo\'s panels and the per-patch error. ' +
        'Options that do not apply to the masking (seed without random, masked_patches without given, mask_ratio with given) are refused with 400 MASK_OPTION_CONFLICT. ' +
        'The image comes as JSON `input`, one multipart file part, or a raw image body (image/*) with the options in the query string. Send `Accept: image/png` for one PNG with the four panels side by side.',
      querystring: ReconstructionsOptionsSchema,
      body: {
        content: {
          'application/json': { schema: ReconstructionsJsonRequestSchema },
          'multipart/form-data': { schema: ReconstructionsMultipartSchema },
          ...Object.fromEntries(RAW_IMAGE_MEDIA_TYPES.map((t) => [t, { schema: { type: 'string', format: 'binary' } }]))
        }
      },
      response: {
        200: {
          description: 'JSON (default) or, with Accept: image/png, one PNG of the four panels side by side',
          content: {
            'application/json': { schema: ReconstructionsResponseSchema },
            'image/png': { schema: { type: 'string', format: 'binary' } }
          }
        },
        ...errorResponses(RECONSTRUCTION_ERRORS)
      }
    }
  }, createReconstruction)
}

/**
 * True when the Accept header prefers image/png to JSON (q-values honoured by @fastify/accepts, i.e.
 * the `accepts` package; JSON wins ties and is the answer when neither is acceptable).
 */
function wantsPng (request: FastifyRequest): boolean {
  return request.accepts().type(['application/json', 'image/png']) === 'image/png'
}

async function createReconstruction (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply): Promise<ReconstructionsResponse | Buffer> {
  const { options: raw, load } = await readOneImage(this, request, ReconstructionsOptionsSchema)
  const options = raw as ReconstructionsOptions
  const model = this.models.get(options.model)
  const reconstructOptions: ReconstructOptions = {
    masking: options.masking ?? 'learned',
    maskRatio: options.mask_ratio,
    seed: options.seed,
    maskedPatches: options.masked_patches
  }
  checkReconstructOptions(model, reconstructOptions) // before decoding: these answers do not depend on the image
  const { image, input } = await load(model)
  const result = await reconstruct(model, image, reconstructOptions, { signal: request.clientSignal, deadline: request.deadline })
  setTimingHeaders(reply, result.queueMs, result.inferenceMs)
  const [rows, cols] = model.manifest.grid
  if (wantsPng(request)) {
    reply.header('x-mask-ratio', String(result.maskRatio))
    reply.header('x-num-kept', String(result.selection.numKept))
    reply.header('x-mean-patch-error', String(result.meanPatchError))
    if (result.seed !== undefined) reply.header('x-seed', String(result.seed))
    reply.type('image/png')
    return await encodePanelStrip(result.panels)
  }
  const panels = await encodePanels(result.panels)
  return {
    model: model.id,
    model_sha256: model.sha256.decoder as string,
    graph_sha256: model.sha256 as Record<string, string>,
    masking: result.masking,
    mask_ratio: result.maskRatio,
    num_kept: result.selection.numKept,
    ...(result.seed !== undefined ? { seed: result.seed } : {}),
    grid: { rows, cols },
    patch_size: model.manifest.patch_size,
    mask: toGrid(result.selection.mask, rows, cols, (v) => v),
    masked_patches: maskedIndices(result.selection.mask),
    panels: {
      original: panels.original.toString('base64'),
      masked: panels.masked.toString('base64'),
      reconstruction: panels.reconstruction.toString('base64'),
      reconstruction_visible: panels.reconstruction_visible.toString('base64')
    },
    patch_error: toGrid(result.selection.mask, rows, cols, (_, t) => result.patchError[t]),
    mean_patch_error: result.meanPatchError,
    norm_pix: { used: result.normPixUsed, uses_true_patch_statistics: result.normPixUsed },
    preprocessing: { ...model.manifest.eval_transform, resize: image.resize, input }
  }
}

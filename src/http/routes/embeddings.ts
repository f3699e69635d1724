/**
 * POST /v1/embeddings: JSON (OpenAI / TEI shape), multipart files or a raw image body.
 */
import { endianness } from 'node:os'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ApiError } from '../../errors.js'
import { embedImages } from '../../features/embed.js'
import { readImageRequest } from '../ingestion/image-request.js'
import { COMMON_ERRORS, IMAGE_ERRORS, errorResponses } from '../schemas/common.js'
import { EmbeddingsJsonRequestSchema, EmbeddingsMultipartSchema, EmbeddingsOptionsSchema, EmbeddingsResponseSchema, type EmbeddingsOptions, type EmbeddingsResponse } from '../schemas/embeddings.js'
import { RAW_IMAGE_MEDIA_TYPES } from '../ingestion/body-parsers.js'
import { setTimingHeaders } from './timing-headers.js'

if (endianness() !== 'LE') throw new Error('encoding_format base64 is defined as little-endian float32; this host is big-endian')

export default async function embeddingsRoutes (app: FastifyInstance): Promise<void> {
  app.post('/v1/embeddings', {
    schema: {
      tags: ['embeddings'],
      summary: 'Embed images',
      description: 'One embedding of D values per image, in request order. pooling mean (default) averages the patch tokens, cls takes the class token; both after the encoder\'s final LayerNorm. normalize (default true) scales to unit L2 norm. Images: JSON `input` (base64 or data URI, one or a list), multipart file parts, or one raw image body (image/*) with the options in the query string.',
      querystring: EmbeddingsOptionsSchema,
      body: {
        content: {
          'application/json': { schema: EmbeddingsJsonRequestSchema },
          'multipart/form-data': { schema: EmbeddingsMultipartSchema },
          ...Object.fromEntries(RAW_IMAGE_MEDIA_TYPES.map((t) => [t, { schema: { type: 'string', format: 'binary' } }]))
        }
      },
      response: {
        200: EmbeddingsResponseSchema,
        ...errorResponses([...COMMON_ERRORS, ...IMAGE_ERRORS, 'BATCH_TOO_LARGE', 'EMBEDDING_DIMENSIONS_UNSUPPORTED'])
      }
    }
  }, createEmbeddings)
}

async function createEmbeddings (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply): Promise<EmbeddingsResponse> {
  const config = this.config
  const { images, options: raw } = await readImageRequest(request, { optionsSchema: EmbeddingsOptionsSchema, maxImages: config.maxImagesPerRequest, maxImageBytes: config.maxImageBytes })
  const options = raw as EmbeddingsOptions
  const model = this.models.get(options.model)
  const D = model.manifest.dims.embed_dim
  if (options.dimensions !== undefined && options.dimensions !== D) {
    throw new ApiError('EMBEDDING_DIMENSIONS_UNSUPPORTED', `${model.id} gives ${D}-dimensional embeddings and is not Matryoshka-trained; omit dimensions or send ${D}`)
  }
  const result = await embedImages(model, images, config, {
    pooling: options.pooling ?? 'mean',
    normalize: options.normalize ?? true,
    includePatchTokens: options.include_patch_tokens ?? false
  }, { signal: request.clientSignal, deadline: request.deadline }, this.metrics)
  setTimingHeaders(reply, result.queueMs, result.inferenceMs)
  const base64 = options.encoding_format === 'base64'
  const encode = (v: Float32Array): number[] | string => base64 ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v)
  const L = model.manifest.num_patches
  return {
    object: 'list',
    data: result.embeddings.map((v, index) => ({
      object: 'embedding' as const,
      index,
      embedding: encode(v),
      ...(result.patchTokens !== undefined
        ? { patch_tokens: base64 ? encode(result.patchTokens[index]) as string : Array.from({ length: L }, (_, t) => Array.from(result.patchTokens![index].subarray(t * D, (t + 1) * D))) }
        : {})
    })),
    model: model.id,
    usage: { prompt_tokens: 0, total_tokens: 0, images: images.length, pixels: result.pixels }
  }
}

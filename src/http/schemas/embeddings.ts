/**
 * POST /v1/embeddings: request and response, following the OpenAI / TEI embeddings API so the official
 * `openai` client works (it sends encoding_format base64 by default and decodes little-endian float32).
 */
import { Type, type Static } from '@sinclair/typebox'
import { ImageStringSchema, ModelField } from './common.js'

export const EmbeddingsOptionsSchema = Type.Object({
  model: Type.Optional(ModelField),
  encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')], { default: 'float', description: 'float: JSON numbers; base64: the little-endian float32 bytes, base64-encoded' })),
  pooling: Type.Optional(Type.Union([Type.Literal('cls'), Type.Literal('mean')], { default: 'mean', description: 'mean: average of the L patch tokens; cls: the class token. Both taken after the encoder\'s final LayerNorm' })),
  normalize: Type.Optional(Type.Boolean({ default: true, description: 'scale each embedding to unit L2 norm' })),
  include_patch_tokens: Type.Optional(Type.Boolean({ default: false, description: 'also return the L patch tokens (L x D, after the final LayerNorm, not normalised), grid order: token t = row * cols + col' })),
  dimensions: Type.Optional(Type.Integer({ minimum: 1, description: 'accepted only when equal to the model\'s D: MAE encoders are not Matryoshka-trained, so embeddings cannot be shortened (422 EMBEDDING_DIMENSIONS_UNSUPPORTED)' })),
  user: Type.Optional(Type.String({ description: 'ignored (OpenAI compatibility)' }))
}, { additionalProperties: false })

export type EmbeddingsOptions = Static<typeof EmbeddingsOptionsSchema>

export const EmbeddingsJsonRequestSchema = Type.Composite([
  Type.Object({
    input: Type.Union([ImageStringSchema, Type.Array(ImageStringSchema, { minItems: 1 })], { description: 'one image or a list (at most CLMAE_MAX_IMAGES_PER_REQUEST), each base64 or a data URI' })
  }),
  EmbeddingsOptionsSchema
], { additionalProperties: false, examples: [{ input: 'data:image/png;base64,iVBORw0KGgo...', pooling: 'mean', normalize: true }] })

export type EmbeddingsJsonRequest = Static<typeof EmbeddingsJsonRequestSchema>

export const EmbeddingsMultipartSchema = Type.Object({
  input: Type.Array(Type.String({ format: 'binary' }), { description: 'one file part per image (any field name is accepted)' }),
  model: Type.Optional(Type.String()),
  encoding_format: Type.Optional(Type.String()),
  pooling: Type.Optional(Type.String()),
  normalize: Type.Optional(Type.String()),
  include_patch_tokens: Type.Optional(Type.String())
}, { description: 'images as file parts; options as text fields with the JSON names' })

const FloatVector = Type.Array(Type.Number())

export const EmbeddingsResponseSchema = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(Type.Object({
    object: Type.Literal('embedding'),
    index: Type.Integer({ description: 'position of the image in the request' }),
    embedding: Type.Union([FloatVector, Type.String({ description: 'base64 of little-endian float32' })], { description: 'D values' }),
    patch_tokens: Type.Optional(Type.Union([Type.Array(FloatVector), Type.String()], { description: 'L x D (base64: L*D float32 values, row-major)' }))
  })),
  model: Type.String(),
  usage: Type.Object({
    prompt_tokens: Type.Integer({ description: 'always 0 (images have no tokens; OpenAI compatibility)' }),
    total_tokens: Type.Integer({ description: 'always 0' }),
    images: Type.Integer(),
    pixels: Type.Integer({ description: 'sum of width x height of the decoded input images' })
  })
})

export type EmbeddingsResponse = Static<typeof EmbeddingsResponseSchema>

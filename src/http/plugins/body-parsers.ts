/**
 * Body parsers beyond JSON: a raw image body (image/* or application/octet-stream; options then come in
 * the query string) read into a Buffer, and multipart/form-data through @fastify/multipart with the
 * image limits (file bytes, file count). The overall body limit is Fastify's bodyLimit (set in app.ts)
 * and applies to every parser; a test checks that it does.
 */
import fp from 'fastify-plugin'
import multipart from '@fastify/multipart'
import type { FastifyInstance } from 'fastify'
import { ApiError } from '../../errors.js'

export interface BodyParsersOptions {
  bodyLimitBytes: number
  maxImageBytes: number
  maxImagesPerRequest: number
}

export const RAW_IMAGE_MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/tiff', 'image/avif', 'image/heif', 'application/octet-stream']

async function bodyParsers (app: FastifyInstance, options: BodyParsersOptions): Promise<void> {
  // no route takes plain text: without this parser, text bodies get 415 REQUEST_MEDIA_TYPE_UNSUPPORTED
  app.removeContentTypeParser('text/plain')
  app.addContentTypeParser(/^image\/[a-z0-9.+-]+$/i, { parseAs: 'buffer', bodyLimit: options.bodyLimitBytes }, (_request, body, done) => done(null, body))
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: options.bodyLimitBytes }, (_request, body, done) => done(null, body))
  // @fastify/multipart does not apply Fastify's bodyLimit to the whole body; check the declared length here
  // (chunked bodies are counted part by part in src/http/image-inputs.ts)
  app.addHook('onRequest', async (request) => {
    const length = Number(request.headers['content-length'])
    if (request.headers['content-type']?.startsWith('multipart/') === true && length > options.bodyLimitBytes) {
      throw new ApiError('REQUEST_BODY_TOO_LARGE', `the body has ${length} bytes; the limit is ${options.bodyLimitBytes} (CLMAE_BODY_LIMIT_BYTES)`)
    }
  })
  await app.register(multipart, {
    limits: {
      fileSize: options.maxImageBytes,
      files: options.maxImagesPerRequest,
      fields: 32,
      fieldSize: 1024 * 1024,
      parts: options.maxImagesPerRequest + 32
    },
    throwFileSizeLimit: true
  })
}

export default fp(bodyParsers, { fastify: '5.x', name: 'body-parsers' })

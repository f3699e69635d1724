/**
 * The only way a request body enters the service. Fastify's own parsers are removed; every accepted
 * media type (any casing, with or without parameters, chunked or not) goes through readBody, which
 * enforces the route's byte budget while the body streams in and the request deadline:
 * - application/json: parsed with Fastify's secure JSON parser (prototype-poisoning keys are errors);
 * - multipart/form-data: kept whole as a MultipartBody and parsed by the route's ingestion call with
 *   the route's own part limits (src/http/ingestion/multipart.ts);
 * - image/* and application/octet-stream: one raw image, a Buffer.
 * Anything else is 415. A Content-Encoding other than identity is 415 too: a compressed body would
 * defeat the byte budget, and no client of this API needs one.
 * The budget is the route's `bodyLimit` (Fastify route option; default CLMAE_BODY_LIMIT_BYTES), named
 * in the error by the route's `config.bodyLimitSetting`.
 */
import fp from 'fastify-plugin'
import type { IncomingMessage } from 'node:http'
import type { Readable } from 'node:stream'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { ApiError } from '../../errors.js'
import { readBody } from './read-body.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the setting behind the route's bodyLimit, e.g. CLMAE_CLASSIFIER_BODY_LIMIT_BYTES */
    bodyLimitSetting?: string
  }
}

/** A multipart/form-data body, read and bounded but not yet parsed (the route knows its limits). */
export class MultipartBody {
  constructor (readonly bytes: Buffer, readonly contentType: string) {}
}

export const RAW_IMAGE_MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/tiff', 'image/avif', 'image/heif', 'application/octet-stream']

async function read (request: FastifyRequest, payload: IncomingMessage | Readable): Promise<Buffer> {
  // an unknown route reads no body: a 404 needs none, and nobody should make us buffer 16 MiB for it
  if (request.is404) throw new ApiError('REQUEST_NOT_FOUND', `${request.method} ${request.url.split('?')[0]} is not a route of this service; see /docs`)
  const encoding = request.headers['content-encoding']
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    throw new ApiError('REQUEST_MEDIA_TYPE_UNSUPPORTED', `Content-Encoding ${JSON.stringify(encoding)} is not accepted; send the body uncompressed`)
  }
  const body = await readBody(payload, request.headers['content-length'], {
    limitBytes: request.routeOptions.bodyLimit ?? Number.POSITIVE_INFINITY,
    deadline: request.deadline,
    limitSetting: request.routeOptions.config?.bodyLimitSetting ?? 'CLMAE_BODY_LIMIT_BYTES'
  })
  if (body.length === 0) throw new ApiError('REQUEST_BODY_EMPTY', 'the request body is empty')
  return body
}

async function bodyParsers (app: FastifyInstance): Promise<void> {
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(/^application\/json(;|$)/i, async (request: FastifyRequest, payload: IncomingMessage) => {
    const text = (await read(request, payload)).toString('utf8')
    return await new Promise((resolve, reject) => {
      parseJson(request, text, (error, value) => {
        if (error !== null) reject(new ApiError('REQUEST_BODY_INVALID', `the JSON body does not parse: ${error.message}`))
        else resolve(value)
      })
    })
  })
  app.addContentTypeParser(/^multipart\/form-data(;|$)/i, async (request: FastifyRequest, payload: IncomingMessage) => {
    return new MultipartBody(await read(request, payload), request.headers['content-type'] ?? '')
  })
  app.addContentTypeParser(/^(image\/[a-z0-9.+-]+|application\/octet-stream)(;|$)/i, read)
}

export default fp(bodyParsers, { fastify: '5.x', name: 'body-parsers' })

/**
 * Turns every failure into application/problem+json `{type, title, status, detail, code, error}` (style
 * rule 7; `error` is OpenAI's member, see src/errors.ts): ApiError as thrown; schema validation ->
 * REQUEST_OPTION_UNKNOWN / REQUEST_VALIDATION_FAILED (src/http/ingestion/options.ts); Fastify's own
 * request errors -> their REQUEST_* codes; anything else is a bug: logged with context, answered as a
 * generic INTERNAL_ERROR that hides internals.
 * Every error answer counts once in clmae_rejections_total{reason=<code>}.
 */
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ErrorObject } from 'ajv'
import { ApiError, toProblem, type ErrorCode } from '../../errors.js'
import type { Metrics } from '../../metrics.js'
import { validationError } from '../ingestion/options.js'

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'REQUEST_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'REQUEST_MEDIA_TYPE_UNSUPPORTED',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'REQUEST_BODY_EMPTY',
  FST_ERR_CTP_INVALID_JSON_BODY: 'REQUEST_BODY_INVALID',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'REQUEST_BODY_INVALID',
  FST_ERR_CTP_INVALID_TYPE: 'REQUEST_MEDIA_TYPE_UNSUPPORTED'
}

/** Maps any thrown value to the ApiError the client sees (unknown errors become INTERNAL_ERROR). */
export function toApiError (error: unknown): ApiError {
  if (error instanceof ApiError) return error
  const e = error as Partial<FastifyError> & { validation?: ErrorObject[], validationContext?: string }
  if (e.validation !== undefined) return validationError(e.validation, e.validationContext)
  const mapped = e.code !== undefined ? FASTIFY_CODES[e.code] : undefined
  if (mapped !== undefined) return new ApiError(mapped, e.message)
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError(e.statusCode === 413 ? 'REQUEST_BODY_TOO_LARGE' : e.statusCode === 415 ? 'REQUEST_MEDIA_TYPE_UNSUPPORTED' : 'REQUEST_BODY_INVALID', e.message)
  }
  return new ApiError('INTERNAL_ERROR', 'internal server error; the request id in the logs has the details')
}

export function sendProblem (reply: FastifyReply, error: ApiError): FastifyReply {
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value)
  return reply.status(error.status).type('application/problem+json').send(toProblem(error))
}

async function problemJson (app: FastifyInstance, options: { metrics: Metrics }): Promise<void> {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const apiError = toApiError(error)
    if (apiError.code === 'INTERNAL_ERROR') request.log.error({ err: error }, 'unhandled error')
    else if (apiError.status >= 500) request.log.warn({ code: apiError.code, detail: apiError.message }, 'request refused')
    options.metrics.rejections.inc({ reason: apiError.code })
    return sendProblem(reply, apiError)
  })
  app.setNotFoundHandler((request, reply) => {
    const apiError = new ApiError('REQUEST_NOT_FOUND', `${request.method} ${request.url.split('?')[0]} is not a route of this service; see /docs`)
    options.metrics.rejections.inc({ reason: apiError.code })
    return sendProblem(reply, apiError)
  })
}

export default fp(problemJson, { fastify: '5.x', name: 'problem-json' })

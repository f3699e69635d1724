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
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
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
  // refused before its body was read (auth, draining, a limit): close the connection after the answer,
  // or a client trickling the rest of the body would keep it open for as long as it likes
  if (!reply.request.raw.complete) reply.header('connection', 'close')
  return reply.status(error.status).type('application/problem+json').send(toProblem(error))
}

/**
 * Fastify's clientErrorHandler: what Node's HTTP parser refuses before there is a request (conflicting
 * Content-Length and Transfer-Encoding, broken chunked framing, headers too large, a request not received
 * within Node's requestTimeout) gets a problem+json answer too, then the connection is closed.
 */
export function clientErrorHandler (metrics: Metrics) {
  return (error: Error & { code?: string }, socket: Socket): void => {
    if (!socket.writable) { socket.destroy(); return } // the client is gone (ECONNRESET): nobody to answer
    const apiError = error.code === 'HPE_HEADER_OVERFLOW'
      ? new ApiError('REQUEST_HEADERS_TOO_LARGE', 'the request headers exceed the HTTP parser\'s limit (16 KiB)')
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new ApiError('REQUEST_TIMEOUT', 'the request was not received within the request timeout')
        : new ApiError('REQUEST_BODY_INVALID', `the HTTP framing is invalid (${error.code ?? error.message})`)
    metrics.rejections.inc({ reason: apiError.code })
    const body = JSON.stringify(toProblem(apiError))
    socket.end(`HTTP/1.1 ${apiError.status} ${STATUS_CODES[apiError.status] ?? 'Error'}\r\nContent-Type: application/problem+json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
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

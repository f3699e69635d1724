/**
 * Schemas shared by the routes: the problem-details error body, documented error responses built from
 * the error registry, and the common request fields.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { ERRORS, type ErrorCode } from '../../errors.js'

export const ProblemSchema = Type.Object({
  type: Type.String({ description: 'URI naming the error code' }),
  title: Type.String({ description: 'the code\'s fixed title' }),
  status: Type.Integer({ description: 'the HTTP status' }),
  detail: Type.String({ description: 'what went wrong with this request' }),
  code: Type.String({ description: 'stable AREA_WHAT error code (README error table)' }),
  errors: Type.Optional(Type.Array(Type.Object({
    index: Type.Integer({ description: 'position of the failed image (or example) in the request' }),
    code: Type.String({ description: 'that item\'s error code' }),
    detail: Type.String()
  }), { description: 'multi-image requests: every failed item; the top-level code and status are the first one\'s' })),
  error: Type.Object({
    message: Type.String({ description: 'the same text as detail' }),
    type: Type.String({ description: 'invalid_request_error, authentication_error or server_error' }),
    code: Type.String({ description: 'the same code as code' }),
    param: Type.Union([Type.String(), Type.Null()], { description: 'the option at fault, when there is one' })
  }, { description: 'OpenAI\'s error member, so OpenAI clients read err.status, err.code and err.message' })
}, { $id: 'Problem', title: 'Problem', description: 'RFC 9457 problem details with a stable `code`, per-item `errors`, and OpenAI\'s `error` member' })

/** `$ref` to ProblemSchema (registered with app.addSchema in app.ts; a component in the OpenAPI document). */
export const ProblemRef = Type.Unsafe<Static<typeof ProblemSchema>>(Type.Ref('Problem'))

/** Error codes every /v1 route can answer with. */
export const COMMON_ERRORS: ErrorCode[] = ['REQUEST_VALIDATION_FAILED', 'REQUEST_OPTION_UNKNOWN', 'REQUEST_BODY_INVALID', 'REQUEST_HEADERS_TOO_LARGE', 'AUTH_KEY_MISSING', 'AUTH_KEY_INVALID', 'INTERNAL_ERROR']

/** Error codes of routes that take images and run a graph. */
export const IMAGE_ERRORS: ErrorCode[] = [
  'REQUEST_BODY_EMPTY', 'REQUEST_BODY_TOO_LARGE', 'REQUEST_MEDIA_TYPE_UNSUPPORTED', 'REQUEST_TIMEOUT', 'REQUEST_TOO_MANY_PARTS', 'REQUEST_FIELD_TOO_LARGE', 'IMAGE_MISSING', 'IMAGE_BASE64_INVALID',
  'IMAGE_TOO_LARGE', 'IMAGE_TOO_MANY_PIXELS', 'IMAGE_TOO_SMALL', 'IMAGE_FORMAT_UNSUPPORTED', 'IMAGE_UNREADABLE',
  'MODEL_NOT_FOUND', 'QUEUE_FULL', 'DECODE_BUDGET_EXCEEDED', 'DEADLINE_EXCEEDED', 'REQUEST_ABORTED', 'SERVICE_UNAVAILABLE'
]

/**
 * Response schemas for the given error codes, grouped by status; each description lists its codes,
 * so the OpenAPI document names every code a route can return.
 */
export function errorResponses (codes: ErrorCode[]): Record<string, TSchema | Record<string, unknown>> {
  const byStatus = new Map<number, ErrorCode[]>()
  for (const code of new Set(codes)) {
    const status = ERRORS[code].status
    byStatus.set(status, [...(byStatus.get(status) ?? []), code])
  }
  const out: Record<string, Record<string, unknown>> = {}
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: list.map((c) => `${c}: ${ERRORS[c].title}`).join('. '),
      content: { 'application/problem+json': { schema: ProblemRef } }
    }
  }
  return out
}

export const ModelField = Type.String({ minLength: 1, maxLength: 64, description: 'model (bundle name); default: the configured default model', examples: ['clmae-vit-mini-p8-64'] })

export const ImageStringSchema = Type.String({ minLength: 1, description: 'an image as base64 or as a data URI (data:image/png;base64,...)' })

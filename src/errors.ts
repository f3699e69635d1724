/**
 * The one registry of client-visible error codes (style rule 7). A handler never picks an HTTP status:
 * it throws `new ApiError(code, detail)` and the problem-json plugin renders
 * `{type, title, status, detail, code}` as application/problem+json.
 *
 * Codes are `<AREA>_<WHAT>`. A published code is never reused for another meaning. Add new codes with
 * one entry per line (other features append theirs); test/errors.test.ts ties this table to the README's
 * error table and to the routes' documented responses.
 */

export interface ErrorSpec {
  status: number
  title: string
}

export const ERRORS = {
  // request shape
  REQUEST_VALIDATION_FAILED: { status: 400, title: 'The request does not match the route schema' },
  REQUEST_BODY_INVALID: { status: 400, title: 'The request body could not be parsed' },
  REQUEST_BODY_EMPTY: { status: 400, title: 'The request body is empty' },
  REQUEST_BODY_TOO_LARGE: { status: 413, title: 'The request body is larger than the configured limit' },
  REQUEST_MEDIA_TYPE_UNSUPPORTED: { status: 415, title: 'The Content-Type of the request is not supported' },
  REQUEST_NOT_FOUND: { status: 404, title: 'No route matches this method and path' },
  REQUEST_ABORTED: { status: 499, title: 'The client closed the connection before the answer was ready' },
  REQUEST_TIMEOUT: { status: 408, title: 'The request body did not arrive within the request deadline' },
  REQUEST_OPTION_UNKNOWN: { status: 400, title: 'The request names an option this route does not have' },
  REQUEST_TOO_MANY_PARTS: { status: 413, title: 'The multipart body has more parts or text fields than the route accepts' },
  REQUEST_FIELD_TOO_LARGE: { status: 413, title: 'A multipart text field is larger than its limit' },
  REQUEST_HEADERS_TOO_LARGE: { status: 431, title: 'The request headers are larger than the HTTP parser accepts' },
  // authentication
  AUTH_KEY_MISSING: { status: 401, title: 'An API key is required' },
  AUTH_KEY_INVALID: { status: 401, title: 'The API key is not valid' },
  // images
  IMAGE_MISSING: { status: 400, title: 'The request carries no image' },
  IMAGE_BASE64_INVALID: { status: 400, title: 'An image string is not valid base64 or a data URI' },
  IMAGE_TOO_LARGE: { status: 413, title: 'An image is larger than the configured byte limit' },
  IMAGE_TOO_MANY_PIXELS: { status: 413, title: 'An image has more pixels than the configured limit' },
  IMAGE_TOO_SMALL: { status: 422, title: 'An image side is shorter than the configured minimum' },
  IMAGE_FORMAT_UNSUPPORTED: { status: 415, title: 'The image format is not in the allowed list' },
  IMAGE_UNREADABLE: { status: 422, title: 'The image could not be decoded (corrupt, truncated or not an image)' },
  BATCH_TOO_LARGE: { status: 413, title: 'The request carries more images than the configured maximum' },
  // models
  MODEL_NOT_FOUND: { status: 404, title: 'No loaded model has this name' },
  MODEL_NO_MASKING_MODULE: { status: 422, title: 'The model has no learned masking module (plain MAE bundle)' },
  MODEL_NO_DECODER: { status: 422, title: 'The model has no decoder (an imported encoder-only checkpoint), so it cannot reconstruct' },
  // masks (mask-maps, reconstructions)
  MASK_RATIO_INVALID: { status: 400, title: 'The mask ratio keeps no patch or removes no patch' },
  MASK_PATCHES_MISSING: { status: 400, title: 'masking "given" needs masked_patches' },
  MASK_PATCH_OUT_OF_RANGE: { status: 400, title: 'A masked patch index is outside the patch grid' },
  MASK_PATCH_DUPLICATE: { status: 400, title: 'A masked patch index is listed more than once' },
  MASK_PATCH_COUNT: { status: 400, title: 'masked_patches removes no patch or every patch' },
  MASK_OPTION_CONFLICT: { status: 400, title: 'An option does not apply to the chosen masking' },
  EMBEDDING_DIMENSIONS_UNSUPPORTED: { status: 422, title: 'The model is not Matryoshka-trained: `dimensions` cannot shorten its embeddings' },
  // few-shot classifiers (src/fewshot, src/http/routes/classifiers.ts)
  CLASSIFIER_NOT_FOUND: { status: 404, title: 'No classifier has this id' },
  CLASSIFIER_MODEL_MISMATCH: { status: 409, title: 'The classifier is pinned to another embedding graph (sha256); re-embed it or use its model' },
  CLASSIFIER_IMAGES_NOT_KEPT: { status: 409, title: 'The classifier did not keep its images (keep_images=false), so it cannot be re-embedded' },
  CLASSIFIER_NOT_REFITTABLE: { status: 409, title: 'The classifier was imported without its example embeddings, so it cannot be refitted' },
  CLASSIFIER_LIMIT_REACHED: { status: 409, title: 'The store already holds the configured maximum number of classifiers' },
  CLASSIFIER_EXAMPLES_MISSING: { status: 400, title: 'The request carries no labelled examples' },
  CLASSIFIER_LABEL_MISSING: { status: 400, title: 'An example has no label (multipart: one label field per file, in order)' },
  CLASSIFIER_LABEL_INVALID: { status: 400, title: 'A label is empty, contains U+0000 or a lone surrogate (labels are 1 to 64 Unicode scalar values)' },
  CLASSIFIER_LABEL_TOO_LONG: { status: 400, title: 'A label is longer than the configured maximum' },
  CLASSIFIER_TOO_MANY_EXAMPLES: { status: 413, title: 'The request carries more examples than the configured maximum per request' },
  CLASSIFIER_FULL: { status: 422, title: 'The classifier would hold more examples than the configured maximum per classifier' },
  CLASSIFIER_TOO_MANY_CLASSES: { status: 422, title: 'The classifier would have more labels than the configured maximum' },
  CLASSIFIER_TOO_FEW_CLASSES: { status: 422, title: 'A classifier needs examples of at least two labels' },
  CLASSIFIER_EMBEDDING_INVALID: { status: 422, title: 'An embedding has the wrong dimension or a non-finite value' },
  CLASSIFIER_IMPORT_INVALID: { status: 422, title: 'The imported classifier is not internally consistent' },
  CLASSIFIER_CONFLICT: { status: 409, title: 'The classifier changed while the request ran (examples added or re-embedded meanwhile); send the request again' },
  CLASSIFIER_FIT_QUEUE_FULL: { status: 503, title: 'This replica\'s fit queue is full; retry after the Retry-After delay' },
  CLASSIFIER_FIT_TIMEOUT: { status: 504, title: 'The fit did not finish within the fit deadline; nothing was stored' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, title: 'This Idempotency-Key was used with another request body' },
  IDEMPOTENCY_KEY_IN_PROGRESS: { status: 409, title: 'A request with this Idempotency-Key is still running; retry later' },
  DATABASE_UNAVAILABLE: { status: 503, title: 'The classifier store cannot be reached; embeddings are still served' },
  // capacity
  QUEUE_FULL: { status: 503, title: 'The inference queue is full; retry after the Retry-After delay' },
  DECODE_BUDGET_EXCEEDED: { status: 503, title: 'Too many decoded image bytes are in flight; retry after the Retry-After delay' },
  DEADLINE_EXCEEDED: { status: 504, title: 'The request did not finish before its deadline' },
  SERVICE_UNAVAILABLE: { status: 503, title: 'The service is starting or shutting down' },
  // bugs and unknown failures; details are logged, never sent
  INTERNAL_ERROR: { status: 500, title: 'Internal server error' }
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERRORS

export function isErrorCode (value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERRORS, value)
}

/** A client-visible failure with a stable code; the status comes from ERRORS. */
export class ApiError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly title: string
  /** extra response headers, e.g. Retry-After for QUEUE_FULL */
  readonly headers: Record<string, string>
  /** the request option (or field) at fault, when there is one: OpenAI's `error.param` */
  readonly param: string | null
  /** per-item failures of a multi-image request (index = position of the image in the request) */
  readonly errors: ItemError[] | undefined

  constructor (code: ErrorCode, detail?: string, options: { headers?: Record<string, string>, cause?: unknown, param?: string, errors?: ItemError[] } = {}) {
    const spec: ErrorSpec = ERRORS[code]
    super(detail ?? spec.title, { cause: options.cause })
    this.name = 'ApiError'
    this.code = code
    this.status = spec.status
    this.title = spec.title
    this.headers = options.headers ?? {}
    this.param = options.param ?? null
    this.errors = options.errors
  }
}

/** One failed item of a multi-image request. */
export interface ItemError {
  index: number
  code: ErrorCode
  detail: string
}

/** OpenAI's error member, so OpenAI clients read our errors (`err.status`, `err.code`, `err.message`). */
export interface OpenAiError {
  message: string
  type: 'invalid_request_error' | 'authentication_error' | 'server_error'
  code: ErrorCode
  param: string | null
}

/**
 * The body every error answer carries: RFC 9457 problem details with our `code`, the per-item `errors`
 * of a multi-image request when there are any, and OpenAI's `error` member (same code and message).
 */
export interface ProblemBody {
  type: string
  title: string
  status: number
  detail: string
  code: ErrorCode
  errors?: ItemError[]
  error: OpenAiError
}

export function problemType (code: ErrorCode): string {
  return `https://clmae-serve.local/errors/${code}`
}

function openAiType (status: number): OpenAiError['type'] {
  if (status === 401) return 'authentication_error'
  return status >= 500 ? 'server_error' : 'invalid_request_error'
}

export function toProblem (error: ApiError): ProblemBody {
  return {
    type: problemType(error.code),
    title: error.title,
    status: error.status,
    detail: error.message,
    code: error.code,
    ...(error.errors !== undefined ? { errors: error.errors } : {}),
    error: { message: error.message, type: openAiType(error.status), code: error.code, param: error.param }
  }
}

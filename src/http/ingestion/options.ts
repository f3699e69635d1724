/**
 * Validation of request options, and the one translation of a schema violation into an ApiError, used
 * for JSON bodies and query strings (Fastify's validator, built in app.ts) and for multipart text fields
 * (validateOptions below) alike, so that every form answers the same code:
 * - an option the route does not have: 400 REQUEST_OPTION_UNKNOWN naming every unknown one;
 * - anything else: 400 REQUEST_VALIDATION_FAILED naming the option and what is wrong with it.
 * Ajv runs with `verbose` so that an additionalProperties error carries the object and its schema:
 * that is what lets the detail list all unknown names, not only the first.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import addFormatsModule from 'ajv-formats'
import type { TSchema } from '@sinclair/typebox'
import { ApiError } from '../../errors.js'

/** Ajv options shared by every validator of request data (app.ts builds Fastify's from these). */
export const AJV_REQUEST_OPTIONS = { useDefaults: true, removeAdditional: false, allErrors: false, strict: false, verbose: true } as const

export function createRequestAjv (coerceTypes: false | 'array'): Ajv {
  const ajv = new Ajv({ ...AJV_REQUEST_OPTIONS, coerceTypes })
  ;(addFormatsModule as unknown as (a: Ajv) => void)(ajv)
  return ajv
}

/** Where the data came from, for the detail: "option pooling", "field examples/0/label", "query limit". */
export type DataSource = 'body' | 'querystring' | 'params' | 'headers' | 'multipart'

function pathName (instancePath: string): string {
  return instancePath.replace(/^\//, '').replace(/~1/g, '/').replace(/~0/g, '~')
}

/** The ApiError of the first Ajv error (Fastify's `error.validation`, or our own validators'). */
export function validationError (errors: readonly ErrorObject[] | null | undefined, source: DataSource | string | undefined): ApiError {
  const e = errors?.[0]
  const where = source === 'querystring' ? 'query parameter' : source === 'params' ? 'path parameter' : 'option'
  if (e === undefined) return new ApiError('REQUEST_VALIDATION_FAILED', 'the request does not match the route schema')
  const path = pathName(e.instancePath)
  if (e.keyword === 'additionalProperties') {
    const known = Object.keys((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {})
    const data = e.data
    const unknown = data !== null && typeof data === 'object'
      ? Object.keys(data).filter((k) => !known.includes(k))
      : [String((e.params as { additionalProperty?: string }).additionalProperty)]
    const prefix = path === '' ? '' : `${path}/`
    return new ApiError('REQUEST_OPTION_UNKNOWN',
      `unknown ${where}${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(prefix + k)).join(', ')}; ${path === '' ? 'this route takes' : `${path} takes`}: ${known.join(', ') || 'none'}`,
      { param: prefix + (unknown[0] ?? '') })
  }
  const name = e.keyword === 'required' ? `${path === '' ? '' : `${path}/`}${String((e.params as { missingProperty?: string }).missingProperty)}` : path
  const message = e.keyword === 'required' ? 'is required' : e.message ?? 'is invalid'
  if (name === '') return new ApiError('REQUEST_VALIDATION_FAILED', `the ${source === 'querystring' ? 'query string' : 'body'} ${message}`)
  return new ApiError('REQUEST_VALIDATION_FAILED', `${where} ${name} ${message}`, { param: name })
}

const coercing = createRequestAjv('array')
const validators = new WeakMap<TSchema, ValidateFunction>()

/**
 * Validates options given as strings (multipart text fields): types coerced ('array': one field fills an
 * array option; a repeated field fills a scalar only when it has one item), defaults filled in.
 */
export function validateOptions (schema: TSchema, options: Record<string, unknown>): Record<string, unknown> {
  let validate = validators.get(schema)
  if (validate === undefined) {
    validate = coercing.compile(schema)
    validators.set(schema, validate)
  }
  if (!validate(options)) throw validationError(validate.errors, 'multipart')
  return options
}

/**
 * Options of a JSON request: the body's, overlaid with the query parameters the client actually sent.
 * Both were validated with defaults filled in, so only the raw query string tells which query options
 * were given; a given one wins over the body (where a default may stand in for an absent field).
 */
export function jsonOptionsWithQuery (request: { url: string, query: unknown }, body: Record<string, unknown>): Record<string, unknown> {
  const query = (request.query ?? {}) as Record<string, unknown>
  const raw = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : ''
  const given = new Set(new URLSearchParams(raw).keys())
  const options: Record<string, unknown> = { ...body }
  for (const key of given) if (Object.hasOwn(query, key)) options[key] = query[key]
  return options
}

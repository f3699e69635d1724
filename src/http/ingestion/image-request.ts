/**
 * The front door of every route that takes images: turns a request in any of the three accepted forms
 * into validated options and bounded image buffers.
 * - JSON: `input` (a base64 / data-URI string or a list of them) and options as fields; the route's
 *   JSON schema has already been checked by Fastify (app.ts), unknown fields included;
 * - multipart/form-data: every file part is an image (in order), text fields are options (an `input`
 *   text field may also carry a base64 image); the part limits come from the configuration;
 * - a raw image body (image/* or application/octet-stream): one image, options in the query string
 *   (checked by the route's querystring schema).
 * The body itself was read under the route's byte budget and the request deadline (body-parsers.ts).
 * Images are checked here for count and byte size only; decoding checks the rest (src/imaging/decode.ts).
 */
import type { FastifyRequest } from 'fastify'
import type { TSchema } from '@sinclair/typebox'
import { ApiError } from '../../errors.js'
import { decodeImageString, maxImageStringChars } from './base64-image.js'
import { MultipartBody } from './body-parsers.js'
import { mapItems } from '../../item-errors.js'
import { parseMultipart, type MultipartLimits, type MultipartPart } from './multipart.js'
import { jsonOptionsWithQuery, validateOptions } from './options.js'

export interface ImageRequest {
  images: Buffer[]
  /** the options, validated; defaults of the schema filled in */
  options: Record<string, unknown>
}

export interface ImageRouteSpec {
  /** schema of the options (everything but the images) */
  optionsSchema: TSchema
  maxImages: number
  maxImageBytes: number
}

function checkCount (count: number, max: number): void {
  if (count > max) throw new ApiError('BATCH_TOO_LARGE', `the request carries ${count} images; the limit is ${max} (CLMAE_MAX_IMAGES_PER_REQUEST)`, { param: 'input' })
}

/**
 * Multipart limits of a route, derived from its configured limits so that each one is reachable: files
 * up to the image limit; text fields: one per option, one per list item of a list option (repeated
 * fields), plus `extraFields` (e.g. one `label` or `input` field per example); a text field may carry a
 * base64 image of maxImageBytes.
 */
export function multipartLimits (spec: { optionsSchema: TSchema, maxFiles: number, maxImageBytes: number, extraFields: number, tooManyFiles: () => ApiError }): MultipartLimits {
  const properties = Object.values((spec.optionsSchema as { properties?: Record<string, TSchema> }).properties ?? {})
  const listItems = properties.reduce((sum, p) => sum + (p.type === 'array' ? Number(p.maxItems ?? 1) : 1), 0)
  return {
    maxFiles: spec.maxFiles,
    maxFileBytes: spec.maxImageBytes,
    maxFields: listItems + spec.extraFields,
    maxFieldBytes: maxImageStringChars(spec.maxImageBytes),
    tooManyFiles: spec.tooManyFiles
  }
}

/**
 * Text fields as options: a null-prototype object (field names are user input); a repeated field is a
 * list. Query-string options (already validated, defaults filled in) apply where no field names them.
 */
export function fieldsToOptions (fields: Iterable<{ name: string, value: string }>, query: Record<string, unknown> = {}): Record<string, unknown> {
  const options = Object.create(null) as Record<string, unknown>
  for (const { name, value } of fields) {
    const previous = Object.hasOwn(options, name) ? options[name] : undefined
    options[name] = previous === undefined ? value : [previous, value].flat()
  }
  for (const [name, value] of Object.entries(query)) if (!Object.hasOwn(options, name)) options[name] = value
  return options
}

/** A file part's bytes, or IMAGE_TOO_LARGE when busboy stopped it at the byte limit. */
export function fileBytes (part: Extract<MultipartPart, { kind: 'file' }>, maxImageBytes: number, index: number): Buffer {
  if (part.truncated) throw new ApiError('IMAGE_TOO_LARGE', `input[${index}] (file part ${JSON.stringify(part.name)}) is larger than ${maxImageBytes} bytes (CLMAE_MAX_IMAGE_BYTES)`)
  return part.bytes
}

export async function readImageRequest (request: FastifyRequest, spec: ImageRouteSpec): Promise<ImageRequest> {
  const query = (request.query ?? {}) as Record<string, unknown>
  const body = request.body
  if (body instanceof MultipartBody) {
    const limits = multipartLimits({
      optionsSchema: spec.optionsSchema,
      maxFiles: spec.maxImages,
      maxImageBytes: spec.maxImageBytes,
      extraFields: spec.maxImages, // `input` text fields
      tooManyFiles: () => new ApiError('BATCH_TOO_LARGE', `more than ${spec.maxImages} files; the limit is ${spec.maxImages} (CLMAE_MAX_IMAGES_PER_REQUEST)`, { param: 'input' })
    })
    const parts = await parseMultipart(body.bytes, body.contentType, limits)
    const imageParts = parts.filter((p) => p.kind === 'file' || p.name === 'input')
    checkCount(imageParts.length, spec.maxImages)
    const images = mapItems(imageParts, (p, i) => p.kind === 'file' ? fileBytes(p, spec.maxImageBytes, i) : decodeImageString(p.value, spec.maxImageBytes, i))
    const fields = parts.filter((p): p is Extract<MultipartPart, { kind: 'field' }> => p.kind === 'field' && p.name !== 'input')
    const options = validateOptions(spec.optionsSchema, fieldsToOptions(fields, query))
    if (images.length === 0) throw new ApiError('IMAGE_MISSING', 'the multipart body has no file part (and no `input` text field)')
    return { images, options }
  }
  if (Buffer.isBuffer(body)) {
    if (body.length > spec.maxImageBytes) throw new ApiError('IMAGE_TOO_LARGE', `the image has ${body.length} bytes; the limit is ${spec.maxImageBytes} (CLMAE_MAX_IMAGE_BYTES)`)
    return { images: [body], options: { ...query } }
  }
  if (body === undefined || body === null) throw new ApiError('REQUEST_BODY_EMPTY', 'send JSON with `input`, multipart files, or a raw image body')
  if (typeof body !== 'object' || Array.isArray(body)) throw new ApiError('REQUEST_VALIDATION_FAILED', 'the JSON body must be an object with `input`')
  const { input, ...rest } = body as { input?: string | string[] } & Record<string, unknown>
  if (input === undefined) throw new ApiError('IMAGE_MISSING', 'the JSON body has no `input`', { param: 'input' })
  const list = Array.isArray(input) ? input : [input]
  checkCount(list.length, spec.maxImages)
  return { images: mapItems(list, (s, i) => decodeImageString(s, spec.maxImageBytes, i)), options: jsonOptionsWithQuery(request, rest) }
}

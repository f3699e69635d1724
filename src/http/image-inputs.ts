/**
 * Reads the images and options of a request in any of the three accepted forms:
 * - JSON: `input` (a base64 / data-URI string or a list of them) and options as fields;
 * - multipart/form-data: every file part is an image (in order), text fields are options
 *   (a text field named `input` may also carry base64 images);
 * - a raw image body (image/* or application/octet-stream): one image, options in the query string.
 * Options from multipart fields are validated (with type coercion) against the route's options schema;
 * JSON bodies and query strings are validated by the route schema itself.
 */
import type { FastifyRequest } from 'fastify'
import { Ajv, type ValidateFunction } from 'ajv'
import type { TSchema } from '@sinclair/typebox'
import { ApiError } from '../errors.js'

export interface ImageRequest {
  images: Buffer[]
  /** the options, validated; defaults of the schema filled in */
  options: Record<string, unknown>
}

export interface ImageInputOptions {
  /** schema of the options (everything but the images) */
  optionsSchema: TSchema
  maxImages: number
  maxImageBytes: number
  /** total multipart bytes (files and fields); Fastify's bodyLimit covers the other forms */
  maxBodyBytes?: number
}

const optionValidators = new WeakMap<TSchema, ValidateFunction>()
// 'array': a single text field also fills an array option, and a list fills a scalar only when it has one item
const coercingAjv = new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, strict: false })

function validateOptions (schema: TSchema, options: Record<string, unknown>): Record<string, unknown> {
  let validate = optionValidators.get(schema)
  if (validate === undefined) {
    validate = coercingAjv.compile(schema)
    optionValidators.set(schema, validate)
  }
  if (!validate(options)) {
    const e = validate.errors?.[0]
    throw new ApiError('REQUEST_VALIDATION_FAILED', `option ${e?.instancePath.slice(1) || e?.params?.additionalProperty || ''} ${e?.message ?? 'is invalid'}`.replace(/\s+/g, ' '))
  }
  return options
}

const DATA_URI = /^data:([a-z0-9.+-]+\/[a-z0-9.+-]+)?((?:;[a-z0-9-]+=[^;,]*)*);base64,/i
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/

/** Decodes one base64 or data-URI image string, checking the byte limit before decoding. */
export function decodeImageString (value: string, maxImageBytes: number, index: number): Buffer {
  let body = value
  const match = DATA_URI.exec(value)
  if (match !== null) body = value.slice(match[0].length)
  else if (value.startsWith('data:')) throw new ApiError('IMAGE_BASE64_INVALID', `input[${index}] is a data URI without ;base64, (only base64 data URIs are accepted)`)
  body = body.replace(/\s+/g, '')
  if (body.length === 0) throw new ApiError('IMAGE_MISSING', `input[${index}] is empty`)
  if (!BASE64.test(body) || body.length % 4 === 1) throw new ApiError('IMAGE_BASE64_INVALID', `input[${index}] is neither valid base64 nor a base64 data URI`)
  if (Math.floor(body.length * 3 / 4) > maxImageBytes + 2) {
    throw new ApiError('IMAGE_TOO_LARGE', `input[${index}] decodes to about ${Math.floor(body.length * 3 / 4)} bytes; the limit is ${maxImageBytes}`)
  }
  return Buffer.from(body, body.includes('-') || body.includes('_') ? 'base64url' : 'base64')
}

function checkCount (count: number, max: number): void {
  if (count > max) throw new ApiError('BATCH_TOO_LARGE', `the request carries ${count} images; the limit is ${max} (CLMAE_MAX_IMAGES_PER_REQUEST)`)
}

export async function readImageRequest (request: FastifyRequest, options: ImageInputOptions): Promise<ImageRequest> {
  const query = (request.query ?? {}) as Record<string, unknown>
  if (request.isMultipart()) {
    const images: Buffer[] = []
    const fields: Record<string, unknown> = {}
    let total = 0
    const count = (bytes: number): void => {
      total += bytes
      if (options.maxBodyBytes !== undefined && total > options.maxBodyBytes) throw new ApiError('REQUEST_BODY_TOO_LARGE', `the multipart body exceeds ${options.maxBodyBytes} bytes`)
    }
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        checkCount(images.length + 1, options.maxImages)
        const bytes = await part.toBuffer()
        count(bytes.length)
        images.push(bytes)
      } else if (part.fieldname === 'input') {
        count(String(part.value).length)
        checkCount(images.length + 1, options.maxImages)
        images.push(decodeImageString(String(part.value), options.maxImageBytes, images.length))
      } else {
        count(String(part.value).length)
        // a repeated text field is a list (e.g. masked_patches once per index)
        const previous = fields[part.fieldname]
        fields[part.fieldname] = previous === undefined ? part.value : [previous, part.value].flat()
      }
    }
    if (images.length === 0) throw new ApiError('IMAGE_MISSING', 'the multipart body has no file part')
    return { images, options: validateOptions(options.optionsSchema, { ...query, ...fields }) }
  }
  const body = request.body
  if (Buffer.isBuffer(body)) {
    if (body.length === 0) throw new ApiError('REQUEST_BODY_EMPTY', 'the raw image body is empty')
    if (body.length > options.maxImageBytes) throw new ApiError('IMAGE_TOO_LARGE', `the image has ${body.length} bytes; the limit is ${options.maxImageBytes}`)
    return { images: [body], options: { ...query } }
  }
  if (body === undefined || body === null) throw new ApiError('REQUEST_BODY_EMPTY', 'send JSON with `input`, multipart files, or a raw image body')
  if (typeof body !== 'object' || Array.isArray(body)) throw new ApiError('REQUEST_VALIDATION_FAILED', 'the JSON body must be an object with `input`')
  const { input, ...rest } = body as { input?: string | string[] } & Record<string, unknown>
  if (input === undefined) throw new ApiError('IMAGE_MISSING', 'the JSON body has no `input`')
  const list = Array.isArray(input) ? input : [input]
  checkCount(list.length, options.maxImages)
  return { images: list.map((s, i) => decodeImageString(s, options.maxImageBytes, i)), options: { ...query, ...rest } }
}

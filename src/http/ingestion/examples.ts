/**
 * Labelled examples of the classifier routes (create, add examples), from JSON
 * (`examples: [{label, input | embedding}]`, already checked against the route's JSON schema) or
 * multipart (file parts, one `label` text field per file in order, `input` text fields as base64
 * images; the other text fields are options). Labels are checked here (labels.ts); the class and
 * example-count limits that depend on the stored classifier are the route's.
 */
import type { FastifyRequest } from 'fastify'
import type { TSchema } from '@sinclair/typebox'
import { ApiError } from '../../errors.js'
import type { Config } from '../../config.js'
import { decodeImageString } from './base64-image.js'
import { MultipartBody } from './body-parsers.js'
import { fieldsToOptions, fileBytes, multipartLimits } from './image-request.js'
import { mapItems } from '../../item-errors.js'
import { checkLabel } from './labels.js'
import { parseMultipart, type MultipartPart } from './multipart.js'
import { validateOptions } from './options.js'

export interface IncomingExample { label: string, image?: Buffer, embedding?: number[] }

type ExampleLimits = Pick<Config, 'classifierMaxExamplesPerRequest' | 'classifierMaxLabelChars' | 'maxImageBytes'>

function tooMany (count: number | undefined, max: number): ApiError {
  return new ApiError('CLASSIFIER_TOO_MANY_EXAMPLES', `${count === undefined ? 'more than ' + String(max) : count} examples in one request; the limit is ${max} (CLMAE_CLASSIFIER_MAX_EXAMPLES_PER_REQUEST)`, { param: 'examples' })
}

export async function readExamples (request: FastifyRequest, optionsSchema: TSchema, config: ExampleLimits): Promise<{ examples: IncomingExample[], options: Record<string, unknown> }> {
  const max = config.classifierMaxExamplesPerRequest
  const body = request.body
  if (body instanceof MultipartBody) {
    const parts = await parseMultipart(body.bytes, body.contentType, multipartLimits({
      optionsSchema,
      maxFiles: max,
      maxImageBytes: config.maxImageBytes,
      extraFields: 2 * max, // a `label` field per example, and an `input` field for examples sent as base64
      tooManyFiles: () => tooMany(undefined, max)
    }))
    const images = parts.filter((p) => p.kind === 'file' || p.name === 'input')
    const labels = parts.filter((p): p is Extract<MultipartPart, { kind: 'field' }> => p.kind === 'field' && p.name === 'label').map((p) => p.value)
    if (images.length > max) throw tooMany(images.length, max)
    if (labels.length !== images.length) {
      throw new ApiError('CLASSIFIER_LABEL_MISSING', `${images.length} images but ${labels.length} label fields; send one \`label\` field per file, in order`, { param: 'label' })
    }
    const fields = parts.filter((p): p is Extract<MultipartPart, { kind: 'field' }> => p.kind === 'field' && p.name !== 'label' && p.name !== 'input')
    const options = validateOptions(optionsSchema, fieldsToOptions(fields))
    const examples = mapItems(images, (p, i) => {
      checkLabel(labels[i], config.classifierMaxLabelChars)
      return { label: labels[i], image: p.kind === 'file' ? fileBytes(p, config.maxImageBytes, i) : decodeImageString(p.value, config.maxImageBytes, i) }
    })
    return { examples, options }
  }
  if (Buffer.isBuffer(body)) throw new ApiError('REQUEST_MEDIA_TYPE_UNSUPPORTED', 'labelled examples come as JSON or multipart/form-data, not as a raw image body')
  if (body === undefined || body === null) throw new ApiError('REQUEST_BODY_EMPTY', 'send JSON with `examples` or multipart files with `label` fields')
  const { examples, ...options } = body as { examples: Array<{ label: string, input?: string, embedding?: number[] }> } & Record<string, unknown>
  if (examples.length > max) throw tooMany(examples.length, max)
  return {
    examples: mapItems(examples, (e, i) => {
      if ((e.input === undefined) === (e.embedding === undefined)) throw new ApiError('REQUEST_VALIDATION_FAILED', `examples[${i}] needs exactly one of input (an image) or embedding`, { param: `examples/${i}` })
      checkLabel(e.label, config.classifierMaxLabelChars)
      return e.input !== undefined ? { label: e.label, image: decodeImageString(e.input, config.maxImageBytes, i) } : { label: e.label, embedding: e.embedding }
    }),
    options
  }
}

/** The JSON body of a JSON-only route; another media type (multipart, raw image) is 415. */
export function jsonBody<T> (request: FastifyRequest): T | undefined {
  const body = request.body
  if (body instanceof MultipartBody || Buffer.isBuffer(body)) {
    throw new ApiError('REQUEST_MEDIA_TYPE_UNSUPPORTED', `${request.routeOptions.url ?? 'this route'} takes application/json only`)
  }
  return body as T | undefined
}

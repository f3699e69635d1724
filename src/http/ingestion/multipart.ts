/**
 * multipart/form-data parsed from the already-read body (src/http/ingestion/read-body.ts bounded it)
 * with @fastify/busboy, the parser @fastify/multipart uses. Parsing a bounded Buffer instead of
 * streaming parts to the route keeps one byte budget for the whole body, makes truncation a parse error
 * (never a half-read request) and lets every limit answer its own code.
 *
 * A part is a file when it has a filename or a Content-Type other than text/plain (an image part without
 * a filename is still an image). Parts keep their order: the n-th image and the n-th `label` pair up.
 */
import { Readable } from 'node:stream'
import { Busboy } from '@fastify/busboy'
import { ApiError } from '../../errors.js'

export interface MultipartLimits {
  /** most file parts; past it the route's own code (BATCH_TOO_LARGE, CLASSIFIER_TOO_MANY_EXAMPLES) */
  maxFiles: number
  maxFileBytes: number
  /** most text fields */
  maxFields: number
  /** longest text field, in bytes */
  maxFieldBytes: number
  /** the error past maxFiles */
  tooManyFiles: () => ApiError
}

export type MultipartPart =
  | { kind: 'file', name: string, bytes: Buffer, truncated: boolean }
  | { kind: 'field', name: string, value: string }

export async function parseMultipart (body: Buffer, contentType: string, limits: MultipartLimits): Promise<MultipartPart[]> {
  let parser: InstanceType<typeof Busboy>
  try {
    parser = new Busboy({
      headers: { 'content-type': contentType },
      isPartAFile: (_name, type, filename) => filename !== undefined || (type !== undefined && !/^text\/plain\b/i.test(type)),
      limits: {
        files: limits.maxFiles,
        fileSize: limits.maxFileBytes,
        fields: limits.maxFields,
        fieldSize: limits.maxFieldBytes,
        parts: limits.maxFiles + limits.maxFields,
        fieldNameSize: 200
      }
    })
  } catch (error) {
    throw new ApiError('REQUEST_BODY_INVALID', `multipart/form-data: ${(error as Error).message} (the Content-Type needs a boundary parameter)`)
  }
  return await new Promise<MultipartPart[]>((resolve, reject) => {
    const parts: MultipartPart[] = []
    let failure: ApiError | undefined
    const fail = (error: ApiError): void => { failure ??= error }
    let pendingFiles = 0
    let finished = false
    const settle = (): void => {
      if (!finished || pendingFiles > 0) return
      if (failure !== undefined) reject(failure)
      else resolve(parts)
    }
    parser.on('file', (name, stream) => {
      const part: MultipartPart = { kind: 'file', name, bytes: Buffer.alloc(0), truncated: false }
      parts.push(part)
      const chunks: Buffer[] = []
      pendingFiles++
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('limit', () => { part.truncated = true })
      stream.on('error', (error: Error) => fail(new ApiError('REQUEST_BODY_INVALID', `multipart/form-data: ${error.message}`)))
      stream.on('end', () => {
        part.bytes = Buffer.concat(chunks)
        pendingFiles--
        settle()
      })
    })
    parser.on('field', (name, value, _nameTruncated, valueTruncated) => {
      if (valueTruncated) fail(new ApiError('REQUEST_FIELD_TOO_LARGE', `the text field ${JSON.stringify(name)} is longer than ${limits.maxFieldBytes} bytes`, { param: name }))
      parts.push({ kind: 'field', name, value })
    })
    parser.on('filesLimit', () => fail(limits.tooManyFiles()))
    parser.on('fieldsLimit', () => fail(new ApiError('REQUEST_TOO_MANY_PARTS', `more than ${limits.maxFields} text fields; this route accepts at most ${limits.maxFields}`)))
    parser.on('partsLimit', () => fail(new ApiError('REQUEST_TOO_MANY_PARTS', `more than ${limits.maxFiles + limits.maxFields} parts (at most ${limits.maxFiles} files and ${limits.maxFields} text fields)`)))
    parser.on('error', (error: Error) => {
      fail(new ApiError('REQUEST_BODY_INVALID', `multipart/form-data: ${error.message} (truncated body or malformed framing)`))
      finished = true
      pendingFiles = 0
      settle()
    })
    parser.on('finish', () => { finished = true; settle() })
    // piped in slices, with backpressure: one write of the whole body stalls busboy once a limit makes
    // it skip a part larger than its buffers
    Readable.from(slices(body, 64 * 1024)).pipe(parser)
  })
}

function * slices (body: Buffer, size: number): Generator<Buffer> {
  for (let start = 0; start < body.length; start += size) yield body.subarray(start, start + size)
}

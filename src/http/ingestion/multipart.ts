/**
 * multipart/form-data parsed from the already-read body (src/http/ingestion/read-body.ts bounded it)
 * with @fastify/busboy, the parser @fastify/multipart uses. Parsing a bounded Buffer instead of
 * streaming parts to the route keeps one byte budget for the whole body, makes truncation a parse error
 * (never a half-read request) and lets every limit answer its own code.
 *
 * The limits are checked here, not by busboy: busboy's own files/parts limits make it skip the rest of
 * a part, and skipping a part that arrives in one large write stalls it for good (found by the fuzz
 * test). With the whole body in memory nothing is gained by stopping early, except on the part count,
 * which is checked up front by counting delimiters, before busboy sees a byte.
 *
 * A part is a file when it has a filename or a Content-Type other than text/plain (an image part without
 * a filename is still an image). Parts keep their order: the n-th image and the n-th `label` pair up.
 */
import { Busboy } from '@fastify/busboy'
import parseParams from '@fastify/busboy/lib/utils/parseParams.js'
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

/**
 * The boundary busboy will use: its own parameter parser and its own rule (the first parameter named
 * boundary, any casing). A regex of ours could read another one from a crafted header (a quoted
 * `"; boundary=x"` inside another parameter) and count the wrong delimiter.
 */
export function multipartBoundary (contentType: string): string | undefined {
  for (const param of parseParams(contentType)) {
    if (Array.isArray(param) && /^boundary$/i.test(param[0])) return param[1]
  }
  return undefined
}

/**
 * Delimiter lines in the body, found without parsing: `--boundary` at the very start or after a CRLF
 * (RFC 2046), which is what busboy splits on. n parts take n + 1 delimiters (the last one closes).
 */
function countDelimiters (body: Buffer, boundary: string): number {
  const delimiter = Buffer.from(`\r\n--${boundary}`)
  let count = body.subarray(0, delimiter.length - 2).equals(delimiter.subarray(2)) ? 1 : 0
  for (let at = body.indexOf(delimiter); at !== -1; at = body.indexOf(delimiter, at + delimiter.length)) count++
  return count
}

export async function parseMultipart (body: Buffer, contentType: string, limits: MultipartLimits): Promise<MultipartPart[]> {
  const boundary = multipartBoundary(contentType)
  if (boundary === undefined) throw new ApiError('REQUEST_BODY_INVALID', 'multipart/form-data needs a boundary parameter in its Content-Type')
  const maxParts = limits.maxFiles + limits.maxFields
  // n parts have n + 1 delimiter lines (the last one closes the body)
  if (/["\\]/.test(boundary)) throw new ApiError('REQUEST_BODY_INVALID', 'the multipart boundary contains a quote or a backslash')
  const delimiters = countDelimiters(body, boundary)
  if (delimiters > maxParts + 1) {
    throw new ApiError('REQUEST_TOO_MANY_PARTS', `more than ${maxParts} parts (at most ${limits.maxFiles} files and ${limits.maxFields} text fields)`)
  }
  let parser: InstanceType<typeof Busboy>
  try {
    parser = new Busboy({
      // rebuilt from the boundary counted above, so busboy cannot read another one
      headers: { 'content-type': `multipart/form-data; boundary="${boundary.replace(/["\\]/g, '')}"` },
      isPartAFile: (_name, type, filename) => filename !== undefined || (type !== undefined && !/^text\/plain\b/i.test(type)),
      limits: { fieldSize: body.length + 1, fieldNameSize: 200 } // never truncated by busboy: checked below
    })
  } catch (error) {
    throw new ApiError('REQUEST_BODY_INVALID', `multipart/form-data: ${(error as Error).message}`)
  }
  const parts = await new Promise<MultipartPart[]>((resolve, reject) => {
    const parts: MultipartPart[] = []
    let failure: ApiError | undefined
    let pendingFiles = 0
    let finished = false
    const settle = (): void => {
      if (!finished || pendingFiles > 0) return
      if (failure !== undefined) reject(failure)
      else resolve(parts)
    }
    parser.on('file', (name, stream) => {
      if (name === undefined) failure ??= new ApiError('REQUEST_BODY_INVALID', 'a multipart part has no name in its Content-Disposition')
      const part: MultipartPart = { kind: 'file', name, bytes: Buffer.alloc(0), truncated: false }
      parts.push(part)
      const chunks: Buffer[] = []
      pendingFiles++
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('error', (error: Error) => { failure ??= new ApiError('REQUEST_BODY_INVALID', `multipart/form-data: ${error.message}`) })
      stream.on('end', () => {
        part.bytes = Buffer.concat(chunks)
        part.truncated = part.bytes.length > limits.maxFileBytes
        pendingFiles--
        settle()
      })
    })
    parser.on('field', (name, value) => {
      if (name === undefined) failure ??= new ApiError('REQUEST_BODY_INVALID', 'a multipart part has no name in its Content-Disposition')
      parts.push({ kind: 'field', name, value })
    })
    parser.on('error', (error: Error) => {
      failure ??= new ApiError('REQUEST_BODY_INVALID', `multipart/form-data: ${error.message} (truncated body or malformed framing)`)
      finished = true
      pendingFiles = 0
      settle()
    })
    parser.on('finish', () => { finished = true; settle() })
    parser.end(body)
  })
  // n parts have n + 1 delimiters; busboy skips a part without a form-data Content-Disposition silently
  if (parts.length < delimiters - 1) throw new ApiError('REQUEST_BODY_INVALID', `${delimiters - 1 - parts.length} multipart part(s) have no Content-Disposition: form-data; name="..."`)
  const files = parts.filter((p) => p.kind === 'file').length
  if (files > limits.maxFiles) throw limits.tooManyFiles()
  const fields = parts.filter((p): p is Extract<MultipartPart, { kind: 'field' }> => p.kind === 'field')
  if (fields.length > limits.maxFields) throw new ApiError('REQUEST_TOO_MANY_PARTS', `${fields.length} text fields; this route accepts at most ${limits.maxFields}`)
  const long = fields.find((f) => Buffer.byteLength(f.value) > limits.maxFieldBytes)
  if (long !== undefined) throw new ApiError('REQUEST_FIELD_TOO_LARGE', `the text field ${JSON.stringify(long.name)} is longer than ${limits.maxFieldBytes} bytes`, { param: long.name })
  return parts
}

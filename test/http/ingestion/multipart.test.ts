/**
 * The multipart parser's limits, each reached and answered with its own code, and never a stall:
 * files (the route's code), text fields and parts (REQUEST_TOO_MANY_PARTS), a file over the byte limit
 * (flagged for IMAGE_TOO_LARGE), a text field over its limit (REQUEST_FIELD_TOO_LARGE), framing errors
 * (REQUEST_BODY_INVALID). The fuzz test found a stall in busboy's own limits; the first case is it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseMultipart, type MultipartLimits } from '../../../src/http/ingestion/multipart.js'
import { ApiError } from '../../../src/errors.js'

const B = 'b0undary'
const TYPE = `multipart/form-data; boundary=${B}`
const END = Buffer.from(`--${B}--\r\n`)

function file (name: string, data: Buffer, type = 'image/png', filename: string | undefined = 'f.png'): Buffer {
  return Buffer.concat([Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="${name}"${filename !== undefined ? `; filename="${filename}"` : ''}\r\nContent-Type: ${type}\r\n\r\n`), data, Buffer.from('\r\n')])
}
function field (name: string, value: string): Buffer {
  return Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
}

const LIMITS: MultipartLimits = { maxFiles: 1, maxFileBytes: 24 * 1024, maxFields: 3, maxFieldBytes: 64, tooManyFiles: () => new ApiError('BATCH_TOO_LARGE', 'too many files') }

async function code (body: Buffer, limits = LIMITS): Promise<string> {
  try { await parseMultipart(body, TYPE, limits); return 'ok' } catch (e) { return (e as ApiError).code }
}

test('an empty file then one over the byte limit, past the file limit, in one write: the route\'s code, no stall', async () => {
  const body = Buffer.concat([file('input', Buffer.alloc(0), 'IMAGE/JPEG', ''), file('input', Buffer.alloc(30 * 1024, 0xff), 'application/octet-stream'), END])
  assert.equal(await code(body), 'BATCH_TOO_LARGE')
})

test('each limit answers its own code', async () => {
  assert.equal(await code(Buffer.concat([file('a', Buffer.alloc(10)), field('x', '1'), END])), 'ok')
  assert.equal(await code(Buffer.concat([file('a', Buffer.alloc(10)), file('b', Buffer.alloc(10)), END])), 'BATCH_TOO_LARGE')
  assert.equal(await code(Buffer.concat([field('a', '1'), field('b', '1'), field('c', '1'), field('d', '1'), END])), 'REQUEST_TOO_MANY_PARTS')
  assert.equal(await code(Buffer.concat(Array.from({ length: 50 }, () => field('a', '1')).concat([END]))), 'REQUEST_TOO_MANY_PARTS')
  assert.equal(await code(Buffer.concat([field('pooling', 'm'.repeat(65)), END])), 'REQUEST_FIELD_TOO_LARGE')
  assert.equal(await code(Buffer.concat([file('a', Buffer.alloc(10)), field('x', '1')])), 'REQUEST_BODY_INVALID', 'no closing delimiter')
  assert.equal(await code(Buffer.from('just some bytes')), 'REQUEST_BODY_INVALID')
  await assert.rejects(parseMultipart(Buffer.from('x'), 'multipart/form-data', LIMITS), (e: ApiError) => e.code === 'REQUEST_BODY_INVALID')
})

test('a file over the byte limit is flagged, not cut; order and names are kept; a part with an image type but no filename is a file', async () => {
  const parts = await parseMultipart(Buffer.concat([field('label', 'a'), file('img', Buffer.alloc(25 * 1024, 1), 'image/png', undefined), field('__proto__', 'x'), END]), TYPE, LIMITS)
  assert.deepEqual(parts.map((p) => [p.kind, p.name]), [['field', 'label'], ['file', 'img'], ['field', '__proto__']])
  const img = parts[1]
  assert.ok(img.kind === 'file' && img.truncated && img.bytes.length === 25 * 1024)
})

test('the boundary counted is the one busboy splits on, however the Content-Type is crafted', async () => {
  const { multipartBoundary } = await import('../../../src/http/ingestion/multipart.js')
  assert.equal(multipartBoundary('multipart/form-data; foo="; boundary=zzz"; boundary=XyZ'), 'XyZ')
  assert.equal(multipartBoundary("multipart/form-data; boundary*=utf-8''XyZ; boundary=zzz"), 'XyZ')
  assert.equal(multipartBoundary('multipart/form-data; BOUNDARY="a b"'), 'a b')
  assert.equal(multipartBoundary('multipart/form-data'), undefined)
  // 50 fields behind a crafted header: refused by the count before parsing, as with a plain header
  const body = Buffer.concat(Array.from({ length: 50 }, () => Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n')).concat([Buffer.from('--XyZ--\r\n')]))
  await assert.rejects(parseMultipart(body, 'multipart/form-data; foo="; boundary=zzz"; boundary=XyZ', LIMITS), (e: ApiError) => e.code === 'REQUEST_TOO_MANY_PARTS')
})

test('a part without a name, or without Content-Disposition, is REQUEST_BODY_INVALID (not skipped)', async () => {
  const nameless = Buffer.concat([Buffer.from(`--${B}\r\nContent-Disposition: form-data\r\n\r\nx\r\n`), END])
  assert.equal(await code(nameless), 'REQUEST_BODY_INVALID')
  const noDisposition = Buffer.concat([file('a', Buffer.alloc(10)), Buffer.from(`--${B}\r\nContent-Type: text/plain\r\n\r\nx\r\n`), END])
  assert.equal(await code(noDisposition), 'REQUEST_BODY_INVALID')
})

/**
 * Images given as strings (JSON `input`, multipart `input` text fields): base64, base64url or a base64
 * data URI. The byte limit is checked on the string's length, before anything is decoded.
 */
import { ApiError } from '../../errors.js'

const DATA_URI = /^data:([a-z0-9.+-]+\/[a-z0-9.+-]+)?((?:;[a-z0-9-]+=[^;,]*)*);base64,/i
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/

/** The longest string that can carry an image of maxImageBytes (base64 plus a data-URI prefix). */
export function maxImageStringChars (maxImageBytes: number): number {
  return Math.ceil(maxImageBytes / 3) * 4 + 1024
}

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

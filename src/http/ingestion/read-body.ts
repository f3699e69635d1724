/**
 * Reads a request body stream into one Buffer under a byte budget and a deadline, by hand rather than
 * with Fastify's `parseAs: 'buffer'`, because that reader knows no deadline: a client trickling a body
 * one byte a second would hold a connection and its buffers until Node's 300 s requestTimeout.
 *
 * - budget: a declared Content-Length over it is refused before a byte is read; a chunked body is
 *   counted as it streams and refused at the first byte past it (413 REQUEST_BODY_TOO_LARGE);
 * - deadline: a body not complete by then is 408 REQUEST_TIMEOUT;
 * - a stream that closes or errors before its end (client gone, truncated framing) is 499
 *   REQUEST_ABORTED: nobody is left to read an answer, but the metrics and logs say what happened.
 * Fastify answers these errors with `Connection: close`, so the unread rest of a refused body is dropped
 * with the connection instead of being parsed as the next request.
 */
import type { Readable } from 'node:stream'
import { ApiError } from '../../errors.js'

export interface BodyBudget {
  /** most bytes accepted */
  limitBytes: number
  /** Date.now() by which the whole body must have arrived */
  deadline: number
  /** names the setting that sets the limit, for the error detail */
  limitSetting: string
}

export async function readBody (stream: Readable, declaredLength: string | undefined, budget: BodyBudget): Promise<Buffer> {
  const declared = declaredLength === undefined ? undefined : Number(declaredLength)
  if (declared !== undefined && declared > budget.limitBytes) {
    throw new ApiError('REQUEST_BODY_TOO_LARGE', `the body declares ${declared} bytes; the limit is ${budget.limitBytes} (${budget.limitSetting})`)
  }
  return await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let received = 0
    let settled = false
    const finish = (error: ApiError | undefined): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.off('error', onError)
      stream.off('close', onClose)
      if (error === undefined) {
        resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received))
      } else {
        stream.pause() // stop reading; the connection is closed after the answer
        reject(error)
      }
    }
    const onData = (chunk: Buffer | string): void => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
      received += bytes.length
      if (received > budget.limitBytes) {
        finish(new ApiError('REQUEST_BODY_TOO_LARGE', `the body exceeds ${budget.limitBytes} bytes (${budget.limitSetting})`))
        return
      }
      chunks.push(bytes)
    }
    const onEnd = (): void => finish(undefined)
    const onError = (): void => finish(new ApiError('REQUEST_ABORTED', `the body stream failed after ${received} bytes (connection reset or truncated framing)`))
    const onClose = (): void => finish(new ApiError('REQUEST_ABORTED', `the connection closed after ${received} bytes of the body`))
    const timer = setTimeout(() => {
      finish(new ApiError('REQUEST_TIMEOUT', `${received} bytes of the body arrived before the request deadline (CLMAE_REQUEST_DEADLINE_MS)`))
    }, Math.max(0, budget.deadline - Date.now()))
    stream.on('data', onData)
    stream.on('end', onEnd)
    stream.on('error', onError)
    stream.on('close', onClose)
    stream.resume()
  })
}

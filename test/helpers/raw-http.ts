/**
 * A raw HTTP/1.1 client over one TCP connection per request, for tests where framing matters (chunked,
 * truncated and slow bodies, odd header casings, path spellings): fetch and app.inject would normalise
 * or refuse what these tests need to send. It writes the given bytes as they are and reads the answer
 * until the server closes the connection (every request sends `Connection: close`).
 */
import { connect } from 'node:net'

export interface RawResponse {
  /** 0 when the server closed the connection without an answer */
  status: number
  headers: Record<string, string>
  body: Buffer
  /** true when the connection closed without a complete answer */
  closedEarly: boolean
}

export interface RawRequest {
  method: string
  path: string
  /** header lines exactly as sent (name casing kept); Host and Connection: close are added */
  headers?: Array<[string, string]>
  /** body chunks; each written as it is (use chunked() to frame them) */
  body?: Array<Buffer | string>
  /** ms to wait between body chunks (slow bodies) */
  chunkDelayMs?: number
  /** end the write side after the body (a truncated body is then visibly over) */
  halfClose?: boolean
  /** give up after this many ms (the answer so far is returned) */
  timeoutMs?: number
}

/** Frames chunks as Transfer-Encoding: chunked; `terminate` false leaves the body unfinished. */
export function chunked (chunks: Array<Buffer | string>, terminate = true): Buffer[] {
  const out = chunks.map((c) => {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c)
    return Buffer.concat([Buffer.from(b.length.toString(16) + '\r\n'), b, Buffer.from('\r\n')])
  })
  if (terminate) out.push(Buffer.from('0\r\n\r\n'))
  return out
}

export async function rawRequest (origin: string, request: RawRequest): Promise<RawResponse> {
  const { hostname, port } = new URL(origin)
  const socket = connect({ host: hostname, port: Number(port) })
  const received: Buffer[] = []
  const done = new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => received.push(d))
    socket.on('close', () => resolve())
    socket.on('error', () => resolve())
  })
  const timer = setTimeout(() => socket.destroy(), request.timeoutMs ?? 10_000)
  await Promise.race([new Promise<void>((resolve) => socket.once('connect', resolve)), done]) // done: closed or failed first
  const head = [`${request.method} ${request.path} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Connection: close',
    ...(request.headers ?? []).map(([k, v]) => `${k}: ${v}`)].join('\r\n') + '\r\n\r\n'
  const write = async (data: Buffer | string): Promise<void> => {
    if (socket.destroyed) return
    await new Promise<void>((resolve) => socket.write(data, () => resolve()))
  }
  await write(head)
  for (const chunk of request.body ?? []) {
    if (request.chunkDelayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, request.chunkDelayMs))
    if (socket.destroyed || socket.writableEnded) break // the server closed the connection: stop sending
    await write(chunk)
  }
  if (request.halfClose === true && !socket.destroyed) socket.end()
  await done
  clearTimeout(timer)
  return parseResponse(Buffer.concat(received))
}

function parseResponse (raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n')
  if (end === -1) return { status: 0, headers: {}, body: Buffer.alloc(0), closedEarly: true }
  const [statusLine, ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n')
  const status = Number(statusLine.split(' ')[1])
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(':')
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  let body = raw.subarray(end + 4)
  let closedEarly = false
  if (headers['transfer-encoding'] === 'chunked') {
    const parts: Buffer[] = []
    let rest = body
    closedEarly = true
    while (rest.length > 0) {
      const lineEnd = rest.indexOf('\r\n')
      if (lineEnd === -1) break
      const size = parseInt(rest.subarray(0, lineEnd).toString(), 16)
      if (size === 0) { closedEarly = false; break }
      parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size))
      rest = rest.subarray(lineEnd + 2 + size + 2)
    }
    body = Buffer.concat(parts)
  } else if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length'])
    closedEarly = body.length < length
    body = body.subarray(0, length)
  }
  return { status, headers, body, closedEarly }
}

/** The parsed JSON body (throws with the raw text when it is not JSON). */
export function jsonOf<T = any> (response: Pick<RawResponse, 'status' | 'body'>): T {
  try {
    return JSON.parse(response.body.toString('utf8')) as T
  } catch {
    throw new Error(`not JSON (status ${response.status}): ${response.body.toString('utf8').slice(0, 200)}`)
  }
}

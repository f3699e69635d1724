/**
 * What the HTTP benchmarks share: their command line (benchmark flags, then `--` and server flags),
 * percentiles, and the server under test as a child process on a free loopback port, ready before use.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { Agent, request } from 'node:http'
import { createServer } from 'node:net'
import { performance } from 'node:perf_hooks'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const ROOT = new URL('..', import.meta.url).pathname

/** `[bench flags] [-- server flags]`: arg(name, fallback) reads a bench flag; serverArgs go to the server. */
export function benchCommandLine (argv = process.argv.slice(2)): { arg: (name: string, fallback: string) => string, serverArgs: string[] } {
  const split = argv.indexOf('--')
  const benchArgs = split === -1 ? argv : argv.slice(0, split)
  return {
    arg: (name, fallback) => { const i = benchArgs.indexOf(`--${name}`); return i === -1 ? fallback : benchArgs[i + 1] },
    serverArgs: split === -1 ? [] : argv.slice(split + 1)
  }
}

export function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN
}

async function freePort (): Promise<number> {
  return await new Promise((resolve) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => { const port = (server.address() as { port: number }).port; server.close(() => resolve(port)) })
  })
}

/**
 * `node --import tsx src/server.ts` with `args`, waited for until /readyz answers 200 (at most 60 s).
 * Its classifier store is a throw-away SQLite file unless `args` name one, so a service already
 * running from this checkout (holding data/clmae.sqlite) does not stop the benchmark.
 * Options (bench:start-to-ready): `compiled` runs `node dist/server.js` (npm run build first) as in
 * production; `pollMs` is the /readyz polling interval; readyMs is spawn to the first 200.
 */
export async function startServerChild (args: string[], options: { compiled?: boolean, pollMs?: number, readyTimeoutMs?: number } = {}): Promise<{ url: string, child: ChildProcess, readyMs: number }> {
  const { compiled = false, pollMs = 100, readyTimeoutMs = 60_000 } = options
  const port = await freePort()
  const store = args.includes('--db-path') || args.includes('--database-url') ? [] : ['--db-path', join(mkdtempSync(join(tmpdir(), 'clmae-bench-')), 'store.sqlite')]
  const entry = compiled ? ['dist/server.js'] : ['--import', 'tsx', 'src/server.ts']
  const spawnedAt = performance.now()
  const child = spawn(process.execPath, [...entry, '--port', String(port), '--log-level', 'warn', ...store, ...args], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] })
  const url = `http://127.0.0.1:${port}`
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with status ${child.exitCode} before it was ready (its message is above)`)
    try { if ((await fetch(`${url}/readyz`)).status === 200) break } catch {}
    if (performance.now() - spawnedAt > readyTimeoutMs) { child.kill('SIGTERM'); throw new Error(`server not ready after ${readyTimeoutMs / 1000} s`) }
    await new Promise((resolve) => setTimeout(resolve, pollMs))
  }
  return { url, child, readyMs: performance.now() - spawnedAt }
}

/**
 * One POST over node:http with a keep-alive agent, the whole answer read. Not fetch: undici's fetch
 * cost this load generator 3.7 ms of CPU per request (2.5 s of every 10 on two shared cores), node:http
 * about 1 ms, and every client millisecond is one the server under test does not get.
 */
export async function post (url: string, path: string, contentType: string, body: Buffer, agent: Agent): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: Buffer }> {
  const target = new URL(path, url)
  return await new Promise((resolve, reject) => {
    const req = request({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: 'POST', agent, headers: { 'content-type': contentType, 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** A keep-alive agent with a socket per concurrent client. */
export function keepAliveAgent (sockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets: sockets })
}

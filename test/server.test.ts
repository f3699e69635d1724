/**
 * src/server.ts as a child process: --help, a configuration error exits 2 naming the setting, and
 * SIGTERM finishes in-flight work before exiting 0.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { IMAGES_DIR, MODELS_DIR, postJson } from './helpers/server.js'

const ROOT = new URL('..', import.meta.url).pathname
const SERVER = ['--import', 'tsx', 'src/server.ts']

test('--help lists the settings; a bad setting exits 2 with a message naming it', () => {
  const help = spawnSync(process.execPath, [...SERVER, '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 })
  assert.equal(help.status, 0)
  assert.match(help.stdout, /--max-batch-size {2}CLMAE_MAX_BATCH_SIZE/)
  const bad = spawnSync(process.execPath, [...SERVER, '--max-batch-size', '0'], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 })
  assert.equal(bad.status, 2)
  assert.match(bad.stderr, /configuration error: invalid maxBatchSize \(CLMAE_MAX_BATCH_SIZE \/ --max-batch-size\)/)
})

test('SIGTERM: in-flight requests finish, then the process exits 0', { timeout: 300_000 }, async () => {
  const db = join(mkdtempSync(join(tmpdir(), 'clmae-server-')), 'clmae.sqlite')
  const child = spawn(process.execPath, [...SERVER, '--port', '0', '--models-dir', MODELS_DIR, '--db-path', db, '--log-level', 'info'], { cwd: ROOT, env: { ...process.env, CLMAE_API_KEYS: '' } })
  let log = ''
  child.stderr.on('data', (d) => { log += String(d) })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d) => {
      out += String(d)
      log += String(d)
      for (const line of out.split('\n')) {
        if (line.includes('"msg":"ready"')) {
          const listening = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
          if (listening !== null) resolve(listening[1])
        }
      }
    })
    void exited.then((code) => reject(new Error(`server exited ${code} before ready:\n${log}`)))
  })
  assert.equal((await fetch(`${url}/readyz`)).status, 200)
  const png = readFileSync(new URL('gradient.png', IMAGES_DIR)).toString('base64')
  let settled = false
  const inflight = postJson(`${url}/v1/embeddings`, { input: Array.from({ length: 16 }, () => png) }).finally(() => { settled = true })
  // wait until the server holds the request (2 in flight: it and this scrape), then SIGTERM
  while (!settled) {
    const metrics = await (await fetch(`${url}/metrics`)).text()
    if (/clmae_inflight_requests 2/.test(metrics)) break
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  child.kill('SIGTERM')
  const response = await inflight
  assert.equal(response.status, 200)
  assert.equal(((await response.json()) as { data: unknown[] }).data.length, 16)
  assert.equal(await exited, 0, log)
  assert.match(log, /draining: finishing queued work/)
})

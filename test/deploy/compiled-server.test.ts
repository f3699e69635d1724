/**
 * Production runs the compiled JavaScript, not tsx: `npm run build` (tsconfig.build.json, src/ -> dist/),
 * then `node dist/server.js`, started from an unrelated working directory so that every asset
 * (package.json, the bundle schema, the web page) is found from the package, not from the cwd. One
 * embedding, one few-shot classifier (its fit runs on the compiled fit worker) and the page.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import sharp from 'sharp'
import { MODELS_DIR } from '../helpers/server.js'

const ROOT = new URL('../../', import.meta.url).pathname
const SERVER_JS = join(ROOT, 'dist', 'server.js')

/** A 64x64 PNG of one colour with a diagonal pattern (variant shifts it). */
async function png (rgb: [number, number, number], variant: number): Promise<Buffer> {
  const side = 64
  const raw = Buffer.alloc(side * side * 3)
  for (let i = 0; i < side * side; i++) {
    const wave = (((i % side) + Math.floor(i / side) * (variant + 1)) % 16) * 2
    for (let c = 0; c < 3; c++) raw[i * 3 + c] = Math.max(0, Math.min(255, rgb[c] + wave - 16))
  }
  return await sharp(raw, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer()
}

test('npm run build, then node dist/server.js serves /readyz, an embedding, a few-shot fit and the page', { timeout: 600_000 }, async (t) => {
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 540_000 })
  assert.equal(build.status, 0, `npm run build failed:\n${build.stdout}\n${build.stderr}`)
  assert.ok(existsSync(SERVER_JS), 'dist/server.js')
  assert.ok(existsSync(join(ROOT, 'dist', 'fewshot', 'fit-worker.js')), 'dist/fewshot/fit-worker.js')

  const cwd = mkdtempSync(join(tmpdir(), 'clmae-compiled-'))
  // no NODE_OPTIONS: nothing may bring tsx's loader into the compiled server
  const env = { ...process.env, NODE_OPTIONS: '', CLMAE_API_KEYS: '' }
  const child = spawn(process.execPath, [SERVER_JS, '--port', '0', '--models-dir', MODELS_DIR, '--db-path', join(cwd, 'clmae.sqlite')], { cwd, env })
  t.after(() => { child.kill('SIGKILL') })
  let log = ''
  child.stderr.on('data', (d) => { log += String(d) })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      log += String(d)
      const listening = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(log)
      if (listening !== null && log.includes('"msg":"ready"')) resolve(listening[1])
    })
    void exited.then((code) => reject(new Error(`dist/server.js exited ${code} before ready:\n${log}`)))
  })

  assert.equal((await fetch(`${url}/readyz`)).status, 200)

  const embedded = await fetch(`${url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(await png([200, 60, 40], 0)) })
  const embedding = await embedded.json() as { data: { embedding: number[] }[] }
  assert.equal(embedded.status, 200, JSON.stringify(embedding))
  assert.equal(embedding.data.length, 1)
  assert.ok(embedding.data[0].embedding.length > 0 && embedding.data[0].embedding.every(Number.isFinite))

  // the fit runs on the worker thread: compiled, its entry is dist/fewshot/fit-worker.js itself
  const examples = []
  for (let i = 0; i < 3; i++) {
    examples.push({ label: 'red', input: `data:image/png;base64,${(await png([220, 30, 30], i)).toString('base64')}` })
    examples.push({ label: 'blue', input: `data:image/png;base64,${(await png([30, 40, 220], i)).toString('base64')}` })
  }
  const created = await fetch(`${url}/v1/classifiers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ examples }) })
  const classifier = await created.json() as { labels: unknown[] }
  assert.equal(created.status, 201, JSON.stringify(classifier))
  assert.equal(classifier.labels.length, 2)

  // assets outside dist/: the page (src/ui/) and the version (package.json) in the OpenAPI document
  const page = await fetch(`${url}/`)
  assert.equal(page.status, 200)
  assert.match(await page.text(), /<html/)
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
  assert.equal(((await (await fetch(`${url}/openapi.json`)).json()) as { info: { version: string } }).info.version, version)

  child.kill('SIGTERM')
  assert.equal(await exited, 0, log)
})

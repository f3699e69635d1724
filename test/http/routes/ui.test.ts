// GET / and /ui/<file>: the page's files with their content types and security headers; no path
// outside the page's folder is reachable; unknown files answer problem+json 404.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import uiRoutes, { resolveUiDir } from '../../../src/http/routes/ui.js'

async function build (t: import('node:test').TestContext) {
  const app = Fastify()
  // The service's problem-json plugin renders ApiError; here a minimal stand-in keeps the test
  // about this route only (status and code come from the error itself).
  app.setErrorHandler((error: any, _request, reply) => {
    reply.code(error.status ?? 500).type('application/problem+json').send({ code: error.code, status: error.status })
  })
  await app.register(uiRoutes)
  t.after(() => app.close())
  return app
}

test('GET / serves the page with a same-origin content security policy', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/' })
  assert.equal(res.statusCode, 200)
  assert.match(res.headers['content-type'] as string, /^text\/html/)
  assert.match(res.body, /<script type="module" src="\/ui\/app\.js"><\/script>/)
  const csp = res.headers['content-security-policy'] as string
  assert.match(csp, /default-src 'self'/)
  assert.match(csp, /script-src 'self'/)
  assert.doesNotMatch(csp, /unsafe-inline|https?:/)
})

test('every file of the page is served with its content type', async (t) => {
  const app = await build(t)
  const types: Record<string, RegExp> = { '.js': /^text\/javascript/, '.css': /^text\/css/, '.html': /^text\/html/, '.svg': /^image\/svg\+xml/ }
  const files = readdirSync(resolveUiDir())
  assert.ok(files.includes('app.js') && files.includes('styles.css'))
  for (const file of files) {
    const res = await app.inject({ method: 'GET', url: `/ui/${file}` })
    assert.equal(res.statusCode, 200, file)
    const ext = file.slice(file.lastIndexOf('.'))
    assert.match(res.headers['content-type'] as string, types[ext], file)
    assert.equal(res.headers['x-content-type-options'], 'nosniff')
  }
})

test('unknown files and paths outside the folder are 404 REQUEST_NOT_FOUND', async (t) => {
  const app = await build(t)
  for (const url of ['/ui/nope.js', '/ui/..%2Fhttp%2Froutes%2Fui.ts', '/ui/%2E%2E%2F%2E%2E%2Fpackage.json']) {
    const res = await app.inject({ method: 'GET', url })
    assert.equal(res.statusCode, 404, url)
    assert.equal(res.json().code, 'REQUEST_NOT_FOUND', url)
  }
})

test('every module the page imports exists in the folder (no build step, no CDN)', () => {
  const dir = resolveUiDir()
  const files = new Set(readdirSync(dir))
  for (const file of files) {
    if (!file.endsWith('.js') && !file.endsWith('.html')) continue
    const text = readFileSyncUtf8(dir, file)
    for (const match of text.matchAll(/(?:from\s+|import\(|src=|href=)['"]([^'"]+)['"]/g)) {
      const target = match[1]
      assert.doesNotMatch(target, /^(https?:)?\/\//, `${file} loads ${target} from another origin`)
      if (target === '#main') continue
      const name = target.replace(/^\.\//, '').replace(/^\/ui\//, '')
      assert.ok(files.has(name), `${file} refers to ${target}, which is not in src/ui/`)
    }
  }
})

function readFileSyncUtf8 (dir: string, file: string): string {
  return readFileSync(join(dir, file), 'utf8')
}

/**
 * GET / and GET /ui/<file>: the audit page (src/ui/), served as-is: plain HTML, CSS and ES modules,
 * no build step. The page talks only to the public /v1 API with fetch, so these routes stay open
 * when API keys are on (the key is typed into the page and sent by it) and are hidden from OpenAPI.
 *
 * The files are read once at registration into memory: a fixed allow-list (whatever is in the
 * folder with a known extension), so no request path ever reaches the file system.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type {} from '@fastify/swagger' // adds `hide` to route schemas
import { ApiError } from '../../errors.js'
import { packagePath } from '../../paths.js'

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon'
}

// Same origin only: no CDN, no inline script. data:/blob: images are the API's PNG panels and the
// user's own files shown back to them.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'", "img-src 'self' data: blob:", "style-src 'self'", "script-src 'self'",
  "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"
].join('; ')

interface Asset { body: Buffer, contentType: string }

/**
 * The folder holding the page. Under tsx this file runs from src/http/routes/; a `tsc` build runs it
 * from dist/http/routes/, where the assets are not copied, so the source folder is used then.
 */
export function resolveUiDir (): string {
  const candidates = [
    fileURLToPath(new URL('../../ui/', import.meta.url)),
    packagePath('src/ui/')
  ]
  const found = candidates.find((dir) => existsSync(join(dir, 'index.html')))
  if (!found) throw new Error(`The audit page assets (index.html) are in none of ${candidates.join(', ')}. This is a bug.`)
  return found
}

function loadAssets (dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>()
  for (const name of readdirSync(dir)) {
    const contentType = CONTENT_TYPES[extname(name)]
    if (contentType) assets.set(name, { body: readFileSync(join(dir, name)), contentType })
  }
  return assets
}

export interface UiRoutesOptions {
  /** folder of the page's files; default: resolveUiDir() */
  uiDir?: string
}

export default async function uiRoutes (app: FastifyInstance, options: UiRoutesOptions = {}): Promise<void> {
  const assets = loadAssets(options.uiDir ?? resolveUiDir())

  app.get('/', { schema: { hide: true } }, serveIndex)
  app.get('/ui/:file', { schema: { hide: true } }, serveAsset)

  async function serveIndex (_request: FastifyRequest, reply: FastifyReply) {
    return send(reply, assets.get('index.html') as Asset)
  }

  async function serveAsset (request: FastifyRequest<{ Params: { file: string } }>, reply: FastifyReply) {
    const asset = assets.get(request.params.file)
    if (!asset) throw new ApiError('REQUEST_NOT_FOUND', `The page has no file named ${JSON.stringify(request.params.file)}.`)
    return send(reply, asset)
  }
}

function send (reply: FastifyReply, asset: Asset) {
  // no-cache: the browser revalidates, so a redeployed page is never mixed with stale modules.
  return reply
    .header('content-type', asset.contentType)
    .header('cache-control', 'no-cache')
    .header('content-security-policy', CONTENT_SECURITY_POLICY)
    .header('x-content-type-options', 'nosniff')
    .send(asset.body)
}

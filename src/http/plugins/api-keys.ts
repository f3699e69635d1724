/**
 * Optional API keys on every /v1 route (and /metrics when protectMetrics is set): either
 * `Authorization: Bearer <key>` or `X-API-Key: <key>`. Health, docs, OpenAPI and the web page stay open.
 * Keys are compared in constant time on their sha256 digests.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ApiError } from '../../errors.js'

export interface ApiKeysOptions {
  apiKeys: readonly string[]
  protectMetrics: boolean
}

function digest (key: string): Buffer {
  return createHash('sha256').update(key).digest()
}

export function presentedKey (headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization
  if (typeof auth === 'string') {
    const match = /^Bearer\s+(.+)$/i.exec(auth.trim())
    if (match !== null) return match[1].trim()
  }
  const header = headers['x-api-key']
  return typeof header === 'string' && header !== '' ? header.trim() : undefined
}

async function apiKeys (app: FastifyInstance, options: ApiKeysOptions): Promise<void> {
  if (options.apiKeys.length === 0) return
  const digests = options.apiKeys.map(digest)
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0]
    const guarded = path === '/v1' || path.startsWith('/v1/') || (options.protectMetrics && path === '/metrics')
    if (!guarded) return
    const key = presentedKey(request.headers)
    if (key === undefined) throw new ApiError('AUTH_KEY_MISSING', 'send the key as Authorization: Bearer <key> or X-API-Key: <key>')
    const d = digest(key)
    if (!digests.some((k) => timingSafeEqual(k, d))) throw new ApiError('AUTH_KEY_INVALID', 'the API key is not one of the configured keys')
  })
}

export default fp(apiKeys, { fastify: '5.x', name: 'api-keys' })

/**
 * Optional API keys: either `Authorization: Bearer <key>` or `X-API-Key: <key>` (header names in any
 * casing; Node lowercases them). Keys are compared in constant time on their sha256 digests.
 *
 * What is protected is decided by where a route is registered, never by the URL string: app.ts
 * registers the /v1 routes (and /metrics with protectMetrics) inside the encapsulated context of this
 * plugin, so its onRequest hook runs for exactly the routes the router matched there, whatever spelling
 * of the path reached them (percent-encoding, double slashes, Fastify's automatic HEAD routes).
 * @fastify/bearer-auth is not used because it reads only the Authorization header.
 *
 * Every route of the context is also marked with the security requirement in the OpenAPI document, so
 * generated clients and Swagger UI's Authorize button send the key.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ApiError } from '../../errors.js'

export interface ApiKeysOptions {
  apiKeys: readonly string[]
}

/** The OpenAPI security requirement of protected operations (either scheme; schemes in openapi.ts). */
export const API_KEY_SECURITY: Array<Record<string, string[]>> = [{ bearer: [] }, { apiKey: [] }]

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
  return typeof header === 'string' && header.trim() !== '' ? header.trim() : undefined
}

/** Adds the key check to the context that registers it (fastify-plugin: not a context of its own). */
async function apiKeyAuth (app: FastifyInstance, options: ApiKeysOptions): Promise<void> {
  app.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, security: API_KEY_SECURITY }
  })
  if (options.apiKeys.length === 0) return
  const digests = options.apiKeys.map(digest)
  app.addHook('onRequest', async (request) => {
    const key = presentedKey(request.headers)
    if (key === undefined) throw new ApiError('AUTH_KEY_MISSING', 'send the key as Authorization: Bearer <key> or X-API-Key: <key>')
    const d = digest(key)
    let valid = false
    for (const k of digests) valid = timingSafeEqual(k, d) || valid // no early exit: same time for every key
    if (!valid) throw new ApiError('AUTH_KEY_INVALID', 'the API key is not one of the configured keys')
  })
}

export default fp(apiKeyAuth, { fastify: '5.x', name: 'api-key-auth' })

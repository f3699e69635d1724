/**
 * GET /metrics: Prometheus text (clmae_* and process defaults). app.ts registers it in the API-key
 * context when CLMAE_PROTECT_METRICS is set, at the root otherwise.
 */
import { Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { errorResponses } from '../schemas/common.js'

export default async function metricsRoutes (app: FastifyInstance): Promise<void> {
  app.get('/metrics', {
    schema: {
      tags: ['health'],
      summary: 'Prometheus metrics (clmae_* and process defaults)',
      produces: ['text/plain'],
      response: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: Type.String() } } }, ...errorResponses(['AUTH_KEY_MISSING', 'AUTH_KEY_INVALID']) }
    }
  }, metrics)
}

async function metrics (this: FastifyInstance, _request: unknown, reply: FastifyReply): Promise<string> {
  reply.type(this.metrics.registry.contentType)
  return await this.metrics.registry.metrics()
}

/**
 * GET /livez (the process answers), GET /readyz (sessions created and warmed up, not draining).
 * Neither needs an API key and neither goes through a queue. /metrics is in metrics.ts.
 */
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { ApiError } from '../../errors.js'
import { errorResponses } from '../schemas/common.js'

const StatusSchema = Type.Object({ status: Type.String() })
const ReadySchema = Type.Object({ status: Type.String(), database: Type.Optional(Type.String({ description: 'the classifier store: up, or unavailable (classifier routes answer 503 DATABASE_UNAVAILABLE; embeddings are still served)' })) })

export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  app.get('/livez', { schema: { tags: ['health'], summary: 'Liveness', response: { 200: StatusSchema } } }, async () => ({ status: 'ok' }))
  app.get('/readyz', {
    schema: {
      tags: ['health'],
      summary: 'Readiness: 200 once every bundle is loaded and warmed up; 503 before that and while draining on shutdown',
      response: { 200: ReadySchema, ...errorResponses(['SERVICE_UNAVAILABLE']) }
    }
  }, readiness)
}

async function readiness (this: FastifyInstance): Promise<{ status: string, database?: string }> {
  const { ready, draining } = this.lifecycle
  if (draining) throw new ApiError('SERVICE_UNAVAILABLE', 'shutting down: finishing queued work', { headers: { 'retry-after': String(this.config.retryAfterSeconds) } })
  if (!ready) throw new ApiError('SERVICE_UNAVAILABLE', 'starting: loading and warming up the models', { headers: { 'retry-after': String(this.config.retryAfterSeconds) } })
  return { status: 'ready', database: this.classifierStore.state }
}

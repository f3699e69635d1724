/**
 * Request duration and count by route template (never the raw URL, to bound label cardinality),
 * method and status, and the in-flight gauge. Also sends X-Request-Id. app.ts registers it before every
 * other onRequest hook, so a request refused by one (auth, draining) is counted and timed like any other;
 * onResponse only undoes what onRequest did for the same request.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Metrics } from '../../metrics.js'

declare module 'fastify' {
  interface FastifyRequest {
    startedAt: number
  }
}

async function requestMetrics (app: FastifyInstance, options: { metrics: Metrics }): Promise<void> {
  const { metrics } = options
  app.decorateRequest('startedAt', 0)
  app.addHook('onRequest', async (request, reply) => {
    request.startedAt = performance.now()
    metrics.inflightRequests.inc()
    reply.header('x-request-id', request.id)
  })
  app.addHook('onResponse', async (request, reply) => {
    if (request.startedAt === 0) return // never counted in (cannot happen while this hook runs first)
    metrics.inflightRequests.dec()
    const labels = { route: request.routeOptions.url ?? 'unmatched', method: request.method, status: String(reply.statusCode) }
    metrics.requestDuration.observe(labels, (performance.now() - request.startedAt) / 1000)
    metrics.requestsTotal.inc(labels)
  })
}

export default fp(requestMetrics, { fastify: '5.x', name: 'request-metrics' })

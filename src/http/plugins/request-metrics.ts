/**
 * Request duration and count by route template (never the raw URL, to bound label cardinality),
 * method and status, and the in-flight gauge. Also sends X-Request-Id. app.ts registers it before every
 * other onRequest hook, so a request refused by one (auth, draining) is counted and timed like any other.
 * A request whose client went away before the answer was written is recorded with status 499.
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
    // 'close' of the response is emitted exactly once, whether it was sent or the client went away
    // (onResponse is not called for an aborted request: a gauge decremented there only ever grows)
    reply.raw.once('close', () => {
      metrics.inflightRequests.dec()
      const status = reply.raw.writableFinished ? String(reply.statusCode) : '499'
      const labels = { route: request.routeOptions.url ?? 'unmatched', method: request.method, status }
      metrics.requestDuration.observe(labels, (performance.now() - request.startedAt) / 1000)
      metrics.requestsTotal.inc(labels)
    })
  })
}

export default fp(requestMetrics, { fastify: '5.x', name: 'request-metrics' })

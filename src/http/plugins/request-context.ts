/**
 * Gives every request `clientSignal` (aborted when the client disconnects before the answer is sent)
 * and `deadline` (Date.now() ms; config.requestDeadlineMs after arrival). Features pass both to
 * model.run(), so work queued for a client that went away, or past its deadline, is dropped.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

declare module 'fastify' {
  interface FastifyRequest {
    clientSignal: AbortSignal
    deadline: number
  }
}

async function requestContext (app: FastifyInstance, options: { requestDeadlineMs: number }): Promise<void> {
  app.decorateRequest('clientSignal', null as unknown as AbortSignal)
  app.decorateRequest('deadline', 0)
  app.addHook('onRequest', async (request, reply) => {
    const controller = new AbortController()
    request.clientSignal = controller.signal
    request.deadline = Date.now() + options.requestDeadlineMs
    // 'close' on the response before it finished writing = the socket went away
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) controller.abort()
    })
  })
}

export default fp(requestContext, { fastify: '5.x', name: 'request-context' })

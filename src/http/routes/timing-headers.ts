/**
 * Per-stage timings on inference answers: TEI-style x-queue-time / x-inference-time (milliseconds)
 * and the standard Server-Timing header.
 */
import type { FastifyReply } from 'fastify'

export function setTimingHeaders (reply: FastifyReply, queueMs: number, inferenceMs: number): void {
  reply.header('x-queue-time', queueMs.toFixed(2))
  reply.header('x-inference-time', inferenceMs.toFixed(2))
  reply.header('server-timing', `queue;dur=${queueMs.toFixed(2)}, inference;dur=${inferenceMs.toFixed(2)}`)
}

/**
 * GET /v1/models: what is loaded and how it runs.
 */
import type { FastifyInstance } from 'fastify'
import { COMMON_ERRORS, errorResponses } from '../schemas/common.js'
import { ModelsResponseSchema, type ModelsResponse } from '../schemas/models.js'
import type { Manifest } from '../../bundles/manifest.js'

export default async function modelsRoutes (app: FastifyInstance): Promise<void> {
  app.get('/v1/models', {
    schema: {
      tags: ['models'],
      summary: 'List the loaded models',
      response: { 200: ModelsResponseSchema, ...errorResponses(COMMON_ERRORS.filter((c) => c !== 'REQUEST_VALIDATION_FAILED' && c !== 'REQUEST_BODY_INVALID')) }
    }
  }, listModels)
}

async function listModels (this: FastifyInstance): Promise<ModelsResponse> {
  const config = this.config
  return {
    object: 'list',
    data: this.models.list().map((m) => ({
      id: m.id,
      object: 'model' as const,
      default: m.id === this.models.defaultModel,
      method: m.manifest.method,
      has_decoder: m.hasGraph('decoder'),
      has_masking_module: m.hasGraph('keep_scores'),
      quantization: quantizationOf(m.manifest),
      manifest: m.manifest as unknown as Record<string, unknown>,
      sha256: m.sha256 as Record<string, string>,
      execution_provider: m.executionProvider,
      batching: { max_batch_size: config.maxBatchSize, max_wait_ms: config.maxWaitMs, max_queue: config.maxQueue, queue_depth: m.queueDepths() as Record<string, number> }
    }))
  }
}

function quantizationOf (manifest: Manifest): ModelsResponse['data'][number]['quantization'] {
  const q = manifest.quantization
  if (q === undefined) return null
  return { method: q.method, weight_type: q.weight_type, per_channel: q.per_channel, source_model: q.source.name, source_encoder_sha256: q.source.sha256.encoder }
}

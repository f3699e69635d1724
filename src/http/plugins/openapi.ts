/**
 * OpenAPI 3 from the route schemas (@fastify/swagger), Swagger UI at /docs and the document at
 * GET /openapi.json. `npm run openapi` writes the same document to openapi/openapi.json
 * (src/cli/write-openapi.ts), and a test fails when that file is stale.
 */
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'

async function openapi (app: FastifyInstance, options: { version: string }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'CL-MAE Serve',
        version: options.version,
        description: 'Embeddings, learned mask maps, reconstructions and few-shot classifiers from curriculum-learned masked autoencoders (ONNX bundles). Every error is application/problem+json with a stable `code`, and also carries OpenAI\'s `error: {message, type, code, param}` member; see the README error table. Mask convention: mask = 1 means the patch is removed; keep_score is in (0, 1), high = keep. Operations marked with a security requirement need an API key when the service runs with CLMAE_API_KEYS.'
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'an API key as Authorization: Bearer <key> (enforced when the service is configured with CLMAE_API_KEYS)' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'the same API key in X-API-Key (either header works)' }
        }
      },
      tags: [
        { name: 'embeddings', description: 'image embeddings (OpenAI / TEI compatible)' },
        { name: 'models', description: 'loaded model bundles' },
        { name: 'health', description: 'liveness, readiness, metrics' }
      ]
    },
    hideUntagged: false,
    // shared schemas (app.addSchema) become components named by their $id, e.g. #/components/schemas/Problem
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}` }
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}

export default fp(openapi, { fastify: '5.x', name: 'openapi' })

/**
 * buildApp(config, deps) assembles the Fastify app and never listens (style rule 11): src/server.ts
 * listens and handles signals; tests call buildApp and listen on 127.0.0.1 port 0 themselves.
 *
 * Decorations other modules use: app.config (Config), app.models (ModelRegistry: run a graph through its
 * batcher with app.models.get(name).run(graph, feeds, { signal: request.clientSignal, deadline: request.deadline })),
 * app.metrics (Metrics), app.lifecycle ({ ready, draining }).
 * Route plugins are registered in ROUTES below, one per line.
 */
import { readFileSync } from 'node:fs'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import sharp from 'sharp'
import accepts from '@fastify/accepts'
import type { Config } from './config.js'
import { packageUrl } from './paths.js'
import { ApiError } from './errors.js'
import { ModelRegistry, type BackendFactory } from './bundles/model-registry.js'
import { createMetrics, type Metrics } from './metrics.js'
import { ClassifierStoreService } from './storage/store-service.js'
import { availableParallelism } from 'node:os'
import { configureImaging } from './imaging/eval-transform.js'
import { DecodeAdmission } from './imaging/decode-admission.js'
import apiKeyAuth from './http/plugins/api-keys.js'
import bodyParsers from './http/ingestion/body-parsers.js'
import { createRequestAjv } from './http/ingestion/options.js'
import openapi from './http/plugins/openapi.js'
import problemJson, { clientErrorHandler } from './http/plugins/problem-json.js'
import requestContext from './http/plugins/request-context.js'
import requestMetrics from './http/plugins/request-metrics.js'
import { ProblemSchema } from './http/schemas/common.js'
import classifiersRoutes from './http/routes/classifiers.js'
import embeddingsRoutes from './http/routes/embeddings.js'
import healthRoutes from './http/routes/health.js'
import metricsRoutes from './http/routes/metrics.js'
import maskMapsRoutes from './http/routes/mask-maps.js'
import modelsRoutes from './http/routes/models.js'
import reconstructionsRoutes from './http/routes/reconstructions.js'
import uiRoutes from './http/routes/ui.js'

export interface Lifecycle {
  /** sessions created and warmed up */
  ready: boolean
  /** SIGTERM received: finishing queued work */
  draining: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    models: ModelRegistry
    metrics: Metrics
    lifecycle: Lifecycle
  }
}

export interface AppDeps {
  /** a ready registry (tests, OpenAPI generation); otherwise loaded from config.modelsDir */
  registry?: ModelRegistry
  backendFactory?: BackendFactory
  metrics?: Metrics
  /** Fastify logger option; default: pino JSON at config.logLevel */
  logger?: FastifyServerOptions['logger']
}

/** Routes open to everyone: health, the web page (it asks for the key itself), docs and OpenAPI. */
const PUBLIC_ROUTES = [healthRoutes, uiRoutes]
/** The API: behind the API-key check when keys are configured (see registerRoutes). */
const API_ROUTES = [
  modelsRoutes,
  embeddingsRoutes,
  maskMapsRoutes,
  reconstructionsRoutes,
  classifiersRoutes
]

const VERSION = (JSON.parse(readFileSync(packageUrl('package.json'), 'utf8')) as { version: string }).version

export async function buildApp (config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const metrics = deps.metrics ?? createMetrics()
  const app = Fastify({
    logger: deps.logger ?? { level: config.logLevel },
    bodyLimit: config.bodyLimitBytes,
    requestIdHeader: 'x-request-id',
    genReqId: () => crypto.randomUUID(),
    return503OnClosing: false, // the draining hook below answers with a problem body instead
    forceCloseConnections: 'idle',
    // Node's own limit on receiving a request, a backstop behind the body reader's deadline (408 REQUEST_TIMEOUT)
    requestTimeout: config.requestDeadlineMs + 5_000,
    clientErrorHandler: clientErrorHandler(metrics)
  })
  app.setValidatorCompiler(buildValidatorCompiler())
  sharp.concurrency(config.sharpConcurrency)
  const cores = availableParallelism()
  configureImaging({
    resizeBackend: config.preprocessResize,
    resampleWorkers: config.resampleWorkers === 0 ? cores : config.resampleWorkers,
    admission: new DecodeAdmission({
      maxConcurrent: config.decodeConcurrency === 0 ? cores : config.decodeConcurrency,
      budgetBytes: config.decodeBudgetBytes,
      retryAfterSeconds: config.retryAfterSeconds,
      onChange: (state) => { metrics.decodeAdmittedBytes.set(state.admittedBytes); metrics.decodeWaiting.set(state.waiting) }
    })
  })

  const registry = deps.registry ?? await ModelRegistry.load(config, { logger: app.log, metrics, backendFactory: deps.backendFactory })
  app.decorate('config', config)
  app.decorate('models', registry)
  app.decorate('metrics', metrics)
  app.decorate('lifecycle', { ready: false, draining: false } satisfies Lifecycle)
  app.addHook('onClose', async () => { await registry.close() })
  app.decorate('classifierStore', new ClassifierStoreService(config, { metrics, log: app.log })) // opened by warmUpApp, closed by the classifier routes

  app.addSchema(ProblemSchema)
  await app.register(problemJson, { metrics })
  // first, so that every answer (refusals by the hooks below included) is counted and timed
  await app.register(requestMetrics, { metrics })
  await app.register(requestContext, { requestDeadlineMs: config.requestDeadlineMs })
  // after SIGTERM: in-flight and queued work finishes, new work goes elsewhere (health routes still answer)
  app.addHook('onRequest', async (request) => {
    if (app.lifecycle.draining && !DRAIN_EXEMPT.has(request.routeOptions.url ?? '')) {
      throw new ApiError('SERVICE_UNAVAILABLE', 'shutting down: send new requests to another instance', { headers: { 'retry-after': String(config.retryAfterSeconds) } })
    }
  })
  await app.register(bodyParsers)
  await app.register(accepts)
  await app.register(openapi, { version: VERSION })
  await registerRoutes(app, config)
  return app
}

const NO_QUERY = { type: 'object', properties: {}, additionalProperties: false }

/** Routes that keep answering while draining (matched route templates, not URL strings). */
const DRAIN_EXEMPT = new Set(['/livez', '/readyz', '/metrics'])

/**
 * Public routes at the root; the API (and /metrics with protectMetrics) in one encapsulated context
 * whose onRequest hook checks the key: auth follows the route the router matched.
 */
async function registerRoutes (app: FastifyInstance, config: Config): Promise<void> {
  for (const routes of PUBLIC_ROUTES) await app.register(routes)
  if (!config.protectMetrics) await app.register(metricsRoutes)
  await app.register(async (api) => {
    // a route without query options refuses any query parameter, as routes with them refuse unknown ones
    api.addHook('onRoute', (route) => {
      if (route.schema?.querystring === undefined) route.schema = { ...route.schema, querystring: NO_QUERY }
    })
    await api.register(apiKeyAuth, { apiKeys: config.apiKeys })
    if (config.protectMetrics) await api.register(metricsRoutes)
    for (const routes of API_ROUTES) await api.register(routes)
  })
}

/** Runs every graph once, opens the classifier store and marks the app ready (/readyz 200). server.ts calls it after listen. */
export async function warmUpApp (app: FastifyInstance): Promise<void> {
  await app.models.warmUp(app.config.maxBatchSize)
  await app.classifierStore.open() // throws naming the store when it cannot be opened or migrated: start-up stops
  app.lifecycle.ready = true
}

/**
 * Fastify's validators: query strings, params and headers are strings, so their types are coerced; JSON
 * bodies carry types, so a wrong type is an error. Unknown properties are errors, never dropped
 * (src/http/ingestion/options.ts names them). Bodies of other media types (multipart, raw images) are
 * not validated here: their schemas only document them, and src/http/ingestion/ reads and validates them.
 */
function buildValidatorCompiler () {
  const coercing = createRequestAjv('array')
  const strictTypes = createRequestAjv(false)
  return ({ schema, httpPart, contentType }: { schema: object, httpPart?: string, contentType?: string }) => {
    if (httpPart === 'body' && contentType !== undefined && contentType !== 'application/json') return () => true
    return (httpPart === 'body' ? strictTypes : coercing).compile(schema)
  }
}

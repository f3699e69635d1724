/**
 * /v1/classifiers: few-shot classifiers fitted on the served embeddings (issue 4).
 *   POST   /v1/classifiers                 create from labelled examples (JSON or multipart), 201
 *   GET    /v1/classifiers                 list (paged by cursor)
 *   GET    /v1/classifiers/{id}            one classifier
 *   DELETE /v1/classifiers/{id}            204
 *   POST   /v1/classifiers/{id}/examples   add examples and refit (version + 1)
 *   POST   /v1/classifiers/{id}/predict    top-k labels, optional abstain threshold
 *   POST   /v1/classifiers/{id}/reembed    re-embed the kept images with another model and refit
 *   GET    /v1/classifiers/{id}/export     weights, normalisation, labels, pinned encoder sha256
 *   POST   /v1/classifiers/import          a new classifier from an export, 201
 * The store (app.classifierStore: SQLite at config.dbPath, or PostgreSQL at config.databaseUrl) is opened
 * at start-up by warmUpApp, so building the app for OpenAPI writes nothing. Every handler runs inside
 * its guard(): a store that cannot be reached answers 503 DATABASE_UNAVAILABLE.
 * Create and add-examples honour an Idempotency-Key header (src/storage/idempotency.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TSchema } from '@sinclair/typebox'
import { ApiError, type ErrorCode } from '../../errors.js'
import type { LoadedModel } from '../../bundles/model-registry.js'
import { assertSamePin, embeddingsMatrix, predictProbe, validateProbe, type EmbeddingPin, type FittedProbe, type ProbeMethod } from '../../fewshot/classifiers.js'
import { embedInChunks, encoderSha256 } from '../../fewshot/embed-examples.js'
import { itemFailure, mapItems, shiftItemErrors } from '../../item-errors.js'
import { FitRunner } from '../../fewshot/fit-runner.js'
import { conflict, type ClassifierHead, type NewExample, type RefitResult, type StoredExample, type WithinWrite } from '../../storage/classifier-store.js'
import { claimKey, completeKey, idempotencyScope, releaseKey, sha256, type IdempotencyClaim } from '../../storage/idempotency.js'
import type { ClassifierStoreService } from '../../storage/store-service.js'
import { presentedKey } from '../plugins/api-keys.js'
import { readImageRequest } from '../ingestion/image-request.js'
import { MultipartBody, RAW_IMAGE_MEDIA_TYPES } from '../ingestion/body-parsers.js'
import { jsonBody, readExamples, type IncomingExample } from '../ingestion/examples.js'
import { checkLabels } from '../ingestion/labels.js'
import { jsonOptionsWithQuery } from '../ingestion/options.js'
import { COMMON_ERRORS, IMAGE_ERRORS, errorResponses } from '../schemas/common.js'
import {
  AddExamplesJsonRequestSchema, AddExamplesOptionsSchema, ClassifierIdParamsSchema, ClassifierSchema, CreateJsonRequestSchema, CreateMultipartSchema,
  CreateOptionsSchema, ExportQuerySchema, ExportSchema, ListQuerySchema, ListResponseSchema, PredictJsonRequestSchema, PredictOptionsSchema,
  PredictResponseSchema, ReembedRequestSchema,
  type Classifier, type ClassifierExport, type ClassifierIdParams, type CreateOptions, type ListQuery, type ListResponse, type PredictOptions,
  type PredictResponse, type ReembedRequest
} from '../schemas/classifiers.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** the few-shot classifier store (decorated by app.ts, opened by warmUpApp) */
    classifierStore: ClassifierStoreService
    /** fits probes on a worker thread, off the event loop: bounded queue, deadline, cancellation */
    classifierFits: FitRunner
  }
}

const NOT_FOUND: ErrorCode[] = ['CLASSIFIER_NOT_FOUND']
const EXAMPLE_ERRORS: ErrorCode[] = [
  ...IMAGE_ERRORS, 'REQUEST_TOO_MANY_PARTS', 'REQUEST_FIELD_TOO_LARGE', 'CLASSIFIER_EXAMPLES_MISSING', 'CLASSIFIER_LABEL_MISSING', 'CLASSIFIER_LABEL_INVALID', 'CLASSIFIER_LABEL_TOO_LONG', 'CLASSIFIER_TOO_MANY_EXAMPLES',
  'CLASSIFIER_FULL', 'CLASSIFIER_TOO_MANY_CLASSES', 'CLASSIFIER_TOO_FEW_CLASSES', 'CLASSIFIER_EMBEDDING_INVALID'
]
const JSON_AND_MULTIPART = (json: TSchema, multipart: TSchema) => ({ content: { 'application/json': { schema: json }, 'multipart/form-data': { schema: multipart } } })

const STORE_ERRORS: ErrorCode[] = ['DATABASE_UNAVAILABLE']
const FIT_ERRORS: ErrorCode[] = ['CLASSIFIER_FIT_QUEUE_FULL', 'CLASSIFIER_FIT_TIMEOUT', 'REQUEST_ABORTED']
const IDEMPOTENCY_ERRORS: ErrorCode[] = ['IDEMPOTENCY_KEY_REUSED', 'IDEMPOTENCY_KEY_IN_PROGRESS']
const IDEMPOTENCY_HEADERS = {
  type: 'object',
  properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 255, description: 'makes a retry safe: the same key (per API key and route, kept 24 h) returns the stored answer instead of doing the work again; another request under the same key is 422 IDEMPOTENCY_KEY_REUSED, one while the first still runs 409 IDEMPOTENCY_KEY_IN_PROGRESS' } }
}

export default async function classifiersRoutes (app: FastifyInstance): Promise<void> {
  const config = app.config
  const fits = new FitRunner({ maxQueued: config.classifierFitQueue, timeoutMs: config.classifierFitTimeoutMs, retryAfterSeconds: config.retryAfterSeconds })
  app.decorate('classifierFits', fits)
  app.addHook('onClose', async () => {
    await fits.close()
    await app.classifierStore.close()
  })

  const tags = ['classifiers']
  // create, add examples and import carry many examples: a budget of their own
  const examplesBody = { bodyLimit: app.config.classifierBodyLimitBytes, config: { bodyLimitSetting: 'CLMAE_CLASSIFIER_BODY_LIMIT_BYTES' } }
  app.post('/v1/classifiers', {
    ...examplesBody,
    schema: {
      tags,
      summary: 'Create a few-shot classifier from labelled examples',
      description: 'JSON: `examples: [{label, input | embedding}]` plus options. Multipart: one file part per image and one `label` text field per file, in order; options as text fields. The embeddings are computed with `model` (default: the default model) and the classifier is pinned to its encoder sha256, pooling and normalisation. Answers 201 with the cross-validated accuracy (null when a label has a single example).',
      body: JSON_AND_MULTIPART(CreateJsonRequestSchema, CreateMultipartSchema),
      headers: IDEMPOTENCY_HEADERS,
      response: { 201: ClassifierSchema, ...errorResponses([...COMMON_ERRORS, ...STORE_ERRORS, ...EXAMPLE_ERRORS, ...FIT_ERRORS, ...IDEMPOTENCY_ERRORS, 'CLASSIFIER_LIMIT_REACHED']) }
    }
  }, guarded(createClassifier))
  app.get('/v1/classifiers', {
    schema: { tags, summary: 'List classifiers (oldest first, paged)', querystring: ListQuerySchema, response: { 200: ListResponseSchema, ...errorResponses([...COMMON_ERRORS, ...STORE_ERRORS]) } }
  }, guarded(listClassifiers))
  app.post('/v1/classifiers/import', {
    ...examplesBody,
    schema: {
      tags,
      summary: 'Import a classifier from an export',
      description: 'Takes the JSON of GET /v1/classifiers/{id}/export and stores it as a new classifier (new id), pinned to the export\'s encoder sha256. Without `examples` it can predict but not be refitted.',
      body: ExportSchema,
      response: { 201: ClassifierSchema, ...errorResponses([...COMMON_ERRORS, ...STORE_ERRORS, 'REQUEST_BODY_TOO_LARGE', 'REQUEST_TIMEOUT', 'REQUEST_MEDIA_TYPE_UNSUPPORTED', 'CLASSIFIER_IMPORT_INVALID', 'CLASSIFIER_LABEL_INVALID', 'CLASSIFIER_LABEL_TOO_LONG', 'CLASSIFIER_TOO_MANY_CLASSES', 'CLASSIFIER_FULL', 'CLASSIFIER_EMBEDDING_INVALID', 'CLASSIFIER_LIMIT_REACHED']) }
    }
  }, guarded(importClassifier))
  app.get('/v1/classifiers/:id', {
    schema: { tags, summary: 'Get one classifier', params: ClassifierIdParamsSchema, response: { 200: ClassifierSchema, ...errorResponses([...COMMON_ERRORS, ...STORE_ERRORS, ...NOT_FOUND]) } }
  }, guarded(getClassifier))
  app.delete('/v1/classifiers/:id', {
    schema: { tags, summary: 'Delete a classifier and its examples', params: ClassifierIdParamsSchema, response: { 204: { type: 'null', description: 'deleted' }, ...errorResponses([...COMMON_ERRORS, ...STORE_ERRORS, ...NOT_FOUND]) } }
  }, guarded(deleteClassifier))
  app.post('/v1/classifiers/:id/examples', {
    ...examplesBody,
    schema: {
      tags,
      summary: 'Add labelled examples and refit (the version goes up)',
      description: 'Same example forms as creation. Images are embedded with the pinned model (409 CLASSIFIER_MODEL_MISMATCH when the loaded one has another encoder sha256).',
      params: ClassifierIdParamsSchema,
      body: JSON_AND_MULTIPART(AddExamplesJsonRequestSchema, CreateMultipartSchema),
      headers: IDEMPOTENCY_HEADERS,
      response: { 200: ClassifierSchema, ...errorResponses([...COMMON_ERRORS, ...STORE_ERRORS, ...NOT_FOUND, ...EXAMPLE_ERRORS, ...FIT_ERRORS, ...IDEMPOTENCY_ERRORS, 'CLASSIFIER_MODEL_MISMATCH', 'CLASSIFIER_NOT_REFITTABLE', 'CLASSIFIER_CONFLICT']) }
    }
  }, guarded(addExamples))
  app.post('/v1/classifiers/:id/predict', {
    schema: {
      tags,
      summary: 'Classify images (or embeddings)',
      description: 'Top-k labels with probabilities per image; `label` is null and `abstained` true when the top probability is below `threshold`. `model` defaults to the pinned model (else the default model); a model whose encoder sha256 differs from the pinned one is 409 CLASSIFIER_MODEL_MISMATCH. Images: JSON `input`, multipart files, or one raw image body with options in the query string.',
      params: ClassifierIdParamsSchema,
      querystring: PredictOptionsSchema,
      body: { content: { 'application/json': { schema: PredictJsonRequestSchema }, 'multipart/form-data': { schema: { type: 'object', description: 'images as file parts; options as text fields' } }, ...Object.fromEntries(RAW_IMAGE_MEDIA_TYPES.map((t) => [t, { schema: { type: 'string', format: 'binary' } }])) } },
      response: { 200: PredictResponseSchema, ...errorResponses([...COMMON_ERRORS, ...STORE_ERRORS, ...NOT_FOUND, ...IMAGE_ERRORS, 'BATCH_TOO_LARGE', 'CLASSIFIER_MODEL_MISMATCH', 'CLASSIFIER_EMBEDDING_INVALID', 'CLASSIFIER_CONFLICT']) }
    }
  }, guarded(predict))
  app.post('/v1/classifiers/:id/reembed', {
    schema: {
      tags,
      summary: 'Re-embed the kept images with a model and refit',
      description: 'For classifiers created with keep_images=true: embeds every stored image with `model` (default: the default model), pins the classifier to it and refits (version + 1).',
      params: ClassifierIdParamsSchema,
      body: ReembedRequestSchema,
      response: { 200: ClassifierSchema, ...errorResponses([...COMMON_ERRORS, ...STORE_ERRORS, ...NOT_FOUND, ...IMAGE_ERRORS, ...FIT_ERRORS, 'CLASSIFIER_IMAGES_NOT_KEPT', 'CLASSIFIER_TOO_FEW_CLASSES', 'CLASSIFIER_CONFLICT']) }
    }
  }, guarded(reembed))
  app.get('/v1/classifiers/:id/export', {
    schema: { tags, summary: 'Export weights, normalisation, labels and the pinned encoder sha256', params: ClassifierIdParamsSchema, querystring: ExportQuerySchema, response: { 200: ExportSchema, ...errorResponses([...COMMON_ERRORS, ...STORE_ERRORS, ...NOT_FOUND]) } }
  }, guarded(exportClassifier))
}

// ---- handlers

type Handler = (this: FastifyInstance, request: FastifyRequest<any>, reply: FastifyReply) => Promise<unknown>

/** Runs a handler inside the store's guard: an unreachable store is 503 DATABASE_UNAVAILABLE, never 500. */
function guarded (handler: Handler): Handler {
  return async function (this: FastifyInstance, request, reply) {
    return await this.classifierStore.guard(async () => await handler.call(this, request, reply))
  }
}

async function createClassifier (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const { examples, options: raw } = await readExamples(request, CreateOptionsSchema, this.config)
  const options = raw as CreateOptions
  checkExamples(this, examples, 0, new Set())
  const model = this.models.get(options.model)
  const store = this.classifierStore.store
  const idempotent = await beginIdempotent(this, request, reply, { options, examples })
  if (idempotent.replay !== undefined) return idempotent.replay
  return await idempotent.run(async (within) => {
    const pin: EmbeddingPin = { model: model.id, sha256: encoderSha256(model), pooling: options.pooling ?? 'mean', normalize: options.normalize ?? true }
    const method: ProbeMethod = options.method ?? 'logreg'
    const keepImages = options.keep_images ?? false
    const embedded = await embedExamples(this, request, model, pin, examples)
    if (await store.count() >= this.config.maxClassifiers) {
      throw new ApiError('CLASSIFIER_LIMIT_REACHED', `the store holds ${this.config.maxClassifiers} classifiers (CLMAE_MAX_CLASSIFIERS); delete one first`)
    }
    const refit = refitter(this, request, method, options.seed ?? 0, options.knn_k)
    const fit = await refit(embedded.map((e, i) => ({ id: i, label: e.label, embedding: Float32Array.from(e.embedding as ArrayLike<number>), image: null })))
    const created = await store.create({ name: options.name ?? '', method, pin, keepImages, dim: model.manifest.dims.embed_dim, refittable: true }, fit, embedded,
      { maxClassifiers: this.config.maxClassifiers }, within(201))
    this.metrics.classifiers.set(await store.count())
    reply.status(201)
    return toView(created)
  })
}

async function listClassifiers (this: FastifyInstance, request: FastifyRequest<{ Querystring: ListQuery }>): Promise<ListResponse> {
  const page = await this.classifierStore.store.list({ limit: request.query.limit ?? 20, cursor: request.query.cursor })
  return { object: 'list', data: page.items.map(toView), next_cursor: page.nextCursor }
}

async function getClassifier (this: FastifyInstance, request: FastifyRequest<{ Params: ClassifierIdParams }>): Promise<Classifier> {
  return toView(await this.classifierStore.store.requireHead(request.params.id))
}

async function deleteClassifier (this: FastifyInstance, request: FastifyRequest<{ Params: ClassifierIdParams }>, reply: FastifyReply): Promise<void> {
  const store = this.classifierStore.store
  if (!(await store.delete(request.params.id))) throw new ApiError('CLASSIFIER_NOT_FOUND', `no classifier has id ${JSON.stringify(request.params.id)}`)
  this.metrics.classifiers.set(await store.count())
  reply.status(204).send()
}

async function addExamples (this: FastifyInstance, request: FastifyRequest<{ Params: ClassifierIdParams }>, reply: FastifyReply): Promise<unknown> {
  const store = this.classifierStore.store
  const current = await store.requireHead(request.params.id)
  if (!current.refittable) throw new ApiError('CLASSIFIER_NOT_REFITTABLE', `classifier ${current.id} was imported without its example embeddings; create a new one instead`)
  const { examples, options } = await readExamples(request, AddExamplesOptionsSchema, this.config)
  checkExamples(this, examples, 0, new Set())
  // the stored answer first: a retry of an accepted request is replayed, not refused by the examples it added
  const idempotent = await beginIdempotent(this, request, reply, { id: current.id, options, examples })
  if (idempotent.replay !== undefined) return idempotent.replay
  return await idempotent.run(async (within) => {
    checkExamples(this, examples, current.numExamples, new Set(current.counts.keys()))
    const needsModel = examples.some((e) => e.image !== undefined)
    const model = needsModel ? pinnedModel(this, current, undefined) : undefined
    const embedded = await embedExamples(this, request, model, current.pin, examples, current.dim)
    const refit = refitter(this, request, current.method, (options.seed as number | undefined) ?? 0, current.knnK)
    return await store.withRefitLock(current.id, async (locked) => {
      const latest = await locked.requireHead(current.id)
      // embedded with the pin read above: if a re-embed moved the classifier to another graph meanwhile, these do not belong
      if (!samePin(latest.pin, current.pin)) throw conflict(current.id, `it was re-embedded with ${latest.pin.model} while these examples were embedded with ${current.pin.model}`)
      checkExamples(this, examples, latest.numExamples, new Set(latest.counts.keys())) // others may have added meanwhile
      const added: StoredExample[] = embedded.map((e) => ({ id: -1, label: e.label, embedding: Float32Array.from(e.embedding as ArrayLike<number>), image: null }))
      const fit = await refit([...await locked.examples(latest.id), ...added])
      return toView(await locked.addExamples(latest.id, embedded, fit, latest.version, within(200)))
    })
  })
}

async function predict (this: FastifyInstance, request: FastifyRequest<{ Params: ClassifierIdParams }>): Promise<PredictResponse> {
  const service = this.classifierStore
  const classifier = await service.store.requireHead(request.params.id) // the current version: one indexed row
  const body = request.body as { embeddings?: number[][] } & PredictOptions | undefined
  let options: PredictOptions
  let rows: number[][]
  let model: LoadedModel | undefined
  if (!(body instanceof MultipartBody) && !Buffer.isBuffer(body) && body?.embeddings !== undefined) {
    if ((body as { input?: unknown }).input !== undefined) throw new ApiError('REQUEST_VALIDATION_FAILED', 'send `input` (images) or `embeddings`, not both')
    options = jsonOptionsWithQuery(request, body) as PredictOptions // query options apply to JSON bodies too, as on the image forms
    model = pinnedModel(this, classifier, options.model)
    rows = body.embeddings
    if (rows.length > this.config.maxImagesPerRequest) throw new ApiError('BATCH_TOO_LARGE', `${rows.length} embeddings; the limit is ${this.config.maxImagesPerRequest} (CLMAE_MAX_IMAGES_PER_REQUEST)`)
  } else {
    const read = await readImageRequest(request, { optionsSchema: PredictOptionsSchema, maxImages: this.config.maxImagesPerRequest, maxImageBytes: this.config.maxImageBytes })
    options = read.options as PredictOptions
    model = pinnedModel(this, classifier, options.model)
    const vectors = await embedInChunks(model, read.images, {
      pooling: classifier.pin.pooling, normalize: classifier.pin.normalize, limits: this.config, chunkSize: this.config.maxImagesPerRequest,
      run: { signal: request.clientSignal, deadline: request.deadline }, metrics: this.metrics
    })
    rows = vectors.map((v) => Array.from(v))
  }
  const x = embeddingsMatrix(rows, classifier.dim)
  const probe = await fittedProbe(this, classifier)
  const predictions = predictProbe(probe, x, { topK: options.top_k ?? 5, threshold: options.threshold })
  return {
    object: 'list',
    classifier: classifier.id,
    version: classifier.version,
    model: model.id,
    model_sha256: classifier.pin.sha256,
    data: predictions.map((p, index) => ({
      index,
      label: p.label,
      abstained: p.abstained,
      top_k: p.top,
      ...(p.neighbours !== undefined ? { neighbours: p.neighbours.map((n) => ({ example_id: n.id, label: n.label, similarity: n.similarity })) } : {})
    }))
  }
}

async function reembed (this: FastifyInstance, request: FastifyRequest<{ Params: ClassifierIdParams, Body: ReembedRequest | undefined }>): Promise<Classifier> {
  const body = jsonBody<ReembedRequest>(request)
  const store = this.classifierStore.store
  const current = await store.requireHead(request.params.id)
  if (!current.keepImages) throw new ApiError('CLASSIFIER_IMAGES_NOT_KEPT', `classifier ${current.id} was created with keep_images=false; create a new one from the images`)
  const model = this.models.get(body?.model)
  const pin: EmbeddingPin = { ...current.pin, model: model.id, sha256: encoderSha256(model) }
  // stream the stored images a request's worth at a time: never every image in memory at once
  const vectors = new Map<number, Float32Array>()
  let position = 0
  for await (const chunk of store.imageChunks(current.id, this.config.maxImagesPerRequest)) {
    const missing = chunk.findIndex((e) => e.image === null)
    if (missing !== -1) throw new ApiError('CLASSIFIER_IMAGES_NOT_KEPT', `example ${position + missing} of classifier ${current.id} was given as an embedding, so it has no image to re-embed`)
    const embedded = await embedInChunks(model, chunk.map((e) => e.image as Buffer), {
      pooling: pin.pooling, normalize: pin.normalize, limits: this.config, chunkSize: this.config.maxImagesPerRequest,
      run: { signal: request.clientSignal, deadline: request.deadline }, metrics: this.metrics
    }).catch((error: unknown) => { throw shiftItemErrors(error, position, current.numExamples) })
    chunk.forEach((e, i) => vectors.set(e.id, embedded[i]))
    position += chunk.length
  }
  const refit = refitter(this, request, current.method, body?.seed ?? 0, current.knnK)
  return await store.withRefitLock(current.id, async (locked) => {
    const latest = await locked.requireHead(current.id)
    // examples added (or another re-embed) since the images were read: these embeddings are not the classifier's
    if (latest.version !== current.version) throw conflict(current.id, `it moved from version ${current.version} to ${latest.version} while its images were being re-embedded`)
    const examples = await locked.examples(latest.id)
    if (examples.length !== vectors.size || examples.some((e) => !vectors.has(e.id))) throw conflict(current.id, 'its examples changed while they were being re-embedded')
    const fit = await refit(examples.map((e) => ({ ...e, embedding: vectors.get(e.id) as Float32Array })))
    return toView(await locked.reembed(latest.id, pin, vectors, fit, latest.version))
  })
}

async function exportClassifier (this: FastifyInstance, request: FastifyRequest<{ Params: ClassifierIdParams, Querystring: { include_examples?: boolean } }>): Promise<ClassifierExport> {
  const store = this.classifierStore.store
  const c = await store.require(request.params.id)
  const examples = request.query.include_examples === false ? undefined : (await store.examples(c.id)).map((e) => ({ label: e.label, embedding: Array.from(e.embedding) }))
  return {
    format: 'clmae-classifier',
    format_version: 1,
    name: c.name || c.id,
    method: c.method,
    version: c.version,
    labels: c.probe.labels,
    embedding: { model: c.pin.model, sha256: c.pin.sha256, pooling: c.pin.pooling, normalize: c.pin.normalize, dim: c.dim },
    probe: c.probe.state,
    cross_validation: c.cv,
    ...(examples !== undefined && examples.length > 0 ? { examples } : {})
  }
}

async function importClassifier (this: FastifyInstance, request: FastifyRequest<{ Body: ClassifierExport }>, reply: FastifyReply): Promise<Classifier> {
  const doc = jsonBody<ClassifierExport>(request)
  if (doc === undefined) throw new ApiError('REQUEST_BODY_EMPTY', 'send the JSON of GET /v1/classifiers/{id}/export')
  const probe: FittedProbe = { labels: doc.labels, dim: doc.embedding.dim, state: doc.probe as FittedProbe['state'] }
  if (doc.probe.method !== doc.method) throw new ApiError('CLASSIFIER_IMPORT_INVALID', `method is ${doc.method} but the probe is ${doc.probe.method}`)
  validateProbe(probe)
  checkLabels(doc.labels, this.config.classifierMaxLabelChars)
  if (doc.labels.length > this.config.classifierMaxClasses) throw new ApiError('CLASSIFIER_TOO_MANY_CLASSES', `${doc.labels.length} labels; the limit is ${this.config.classifierMaxClasses} (CLMAE_CLASSIFIER_MAX_CLASSES)`)
  const examples = doc.examples ?? []
  if (examples.length > this.config.classifierMaxExamples) throw new ApiError('CLASSIFIER_FULL', `${examples.length} examples; a classifier holds at most ${this.config.classifierMaxExamples} (CLMAE_CLASSIFIER_MAX_EXAMPLES)`)
  embeddingsMatrix(examples.map((e) => e.embedding), probe.dim)
  const known = new Set(doc.labels)
  const stray = examples.find((e) => !known.has(e.label))
  if (stray !== undefined) throw new ApiError('CLASSIFIER_IMPORT_INVALID', `example label ${JSON.stringify(stray.label)} is not among labels`)
  const counts = new Map(doc.labels.map((l) => [l, 0]))
  for (const e of examples) counts.set(e.label, (counts.get(e.label) ?? 0) + 1)
  const store = this.classifierStore.store
  const created = await store.create(
    { name: doc.name, method: doc.method, pin: { model: doc.embedding.model, sha256: doc.embedding.sha256, pooling: doc.embedding.pooling, normalize: doc.embedding.normalize }, keepImages: false, dim: probe.dim, refittable: examples.length > 0 },
    { probe, counts, cv: doc.cross_validation ?? { scheme: null, accuracy: null } },
    examples.map((e) => ({ label: e.label, embedding: e.embedding })),
    { maxClassifiers: this.config.maxClassifiers })
  this.metrics.classifiers.set(await store.count())
  reply.status(201)
  return toView(created)
}

// ---- helpers

/** The model to embed with for a stored classifier, 409 unless its encoder is the pinned one. */
function pinnedModel (app: FastifyInstance, classifier: ClassifierHead, requested: string | undefined): LoadedModel {
  // Default: the pinned model when it is loaded, else the default model (then the pin check explains the 409).
  const name = requested ?? (app.models.list().some((m) => m.id === classifier.pin.model) ? classifier.pin.model : undefined)
  const model = app.models.get(name)
  assertSamePin(classifier.pin, { model: model.id, sha256: encoderSha256(model) })
  return model
}

/**
 * Fits on every example on the fit worker (bounded queue, deadline; cancelled when the client goes
 * away), timed into clmae_classifier_fit_seconds.
 */
function refitter (app: FastifyInstance, request: FastifyRequest, method: ProbeMethod, seed: number, knnK?: number): (all: StoredExample[]) => Promise<RefitResult> {
  return async (all) => {
    const fits = app.classifierFits
    const stop = app.metrics.classifierFitDuration.startTimer({ method })
    try {
      const x = embeddingsMatrix(all.map((e) => Array.from(e.embedding)), all.length > 0 ? all[0].embedding.length : 0)
      const pending = fits.fit(method, x, all.map((e) => e.label), { seed, knnK, exampleIds: all.map((e) => e.id) }, { signal: request.clientSignal })
      app.metrics.classifierFitQueue.set(fits.queued)
      const fit = await pending
      // the client may have gone while the fit ran its last stretch: store nothing for it
      if (request.clientSignal.aborted) throw new ApiError('REQUEST_ABORTED', 'the client went away before the fit was stored; nothing was stored')
      return fit
    } catch (error) {
      if (error instanceof ApiError && error.code === 'CLASSIFIER_FIT_QUEUE_FULL') app.metrics.rejections.inc({ reason: error.code })
      throw error
    } finally {
      app.metrics.classifierFitQueue.set(fits.queued)
      stop()
    }
  }
}

function samePin (a: EmbeddingPin, b: EmbeddingPin): boolean {
  return a.model === b.model && a.sha256 === b.sha256 && a.pooling === b.pooling && a.normalize === b.normalize
}

/** The classifier's probe at the version just read: from the cache, else decoded from the store once. */
async function fittedProbe (app: FastifyInstance, head: ClassifierHead): Promise<FittedProbe> {
  const service = app.classifierStore
  const cached = service.cache.get(head.id, head.version)
  app.metrics.classifierProbeCache.inc({ result: cached === undefined ? 'miss' : 'hit' })
  if (cached !== undefined) return cached
  const probe = await service.store.probe(head.id, head.version)
  if (probe === undefined) throw conflict(head.id, `it moved past version ${head.version} while the request ran`)
  service.cache.set(head.id, head.version, probe)
  return probe
}

interface Idempotent {
  /** the stored answer of an earlier request with this key (its status is already set on the reply) */
  replay?: unknown
  /** runs the work; `within(status)` records the answer in the write's transaction */
  run: <T>(work: (within: (status: number) => WithinWrite | undefined) => Promise<T>) => Promise<T>
}

/**
 * Idempotency-Key: claims the key (scoped by API key and route) for a request fingerprinted by its
 * parameters, options and examples (images by their sha256), or returns the stored answer.
 */
async function beginIdempotent (app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, fingerprint: { id?: string, options: unknown, examples: IncomingExample[] }): Promise<Idempotent> {
  const key = request.headers['idempotency-key']
  if (typeof key !== 'string') return { run: async (work) => await work(() => undefined) }
  const store = app.classifierStore.store
  const canonical = JSON.stringify({
    id: fingerprint.id ?? null,
    options: fingerprint.options,
    examples: fingerprint.examples.map((e) => [e.label, e.image !== undefined ? sha256(e.image) : e.embedding])
  })
  const claim: IdempotencyClaim = { scope: idempotencyScope(presentedKey(request.headers), `${request.method} ${request.routeOptions.url ?? ''}`), key, hash: sha256(canonical) }
  const staleMs = app.config.requestDeadlineMs + (app.config.classifierFitQueue + 1) * app.config.classifierFitTimeoutMs
  const outcome = await claimKey(store.kysely, claim, { staleMs })
  if (outcome.kind === 'replay') {
    reply.status(outcome.status).header('idempotent-replayed', 'true')
    return { replay: outcome.body, run: async () => { throw new Error('replayed. This is a bug.') } }
  }
  return {
    run: async (work) => {
      try {
        return await work((status) => async (db, written) => { await completeKey(db, claim, outcome.claimedMs, status, toView(written)) })
      } catch (error) {
        await releaseKey(store.kysely, claim, outcome.claimedMs).catch(() => {})
        throw error
      }
    }
  }
}

/** Count and class limits, before any embedding work (labels were checked when the examples were read). */
function checkExamples (app: FastifyInstance, examples: IncomingExample[], stored: number, storedLabels: Set<string>): void {
  const config = app.config
  if (examples.length === 0) throw new ApiError('CLASSIFIER_EXAMPLES_MISSING', 'send at least one labelled example')
  if (examples.length > config.classifierMaxExamplesPerRequest) {
    throw new ApiError('CLASSIFIER_TOO_MANY_EXAMPLES', `${examples.length} examples; the limit is ${config.classifierMaxExamplesPerRequest} per request (CLMAE_CLASSIFIER_MAX_EXAMPLES_PER_REQUEST)`)
  }
  if (stored + examples.length > config.classifierMaxExamples) {
    throw new ApiError('CLASSIFIER_FULL', `the classifier would hold ${stored + examples.length} examples; the limit is ${config.classifierMaxExamples} (CLMAE_CLASSIFIER_MAX_EXAMPLES)`)
  }
  const labels = new Set([...storedLabels, ...examples.map((e) => e.label)])
  if (labels.size > config.classifierMaxClasses) {
    throw new ApiError('CLASSIFIER_TOO_MANY_CLASSES', `${labels.size} labels; the limit is ${config.classifierMaxClasses} (CLMAE_CLASSIFIER_MAX_CLASSES)`)
  }
}

/** Per-item errors of the embedded subset renumbered as positions in the request's examples. */
function toExampleIndexes (error: unknown, all: IncomingExample[], subset: IncomingExample[]): unknown {
  if (!(error instanceof ApiError) || error.errors === undefined || subset.length === all.length) return error
  const positions = subset.map((e) => all.indexOf(e))
  return itemFailure(error.errors.map((e) => ({ ...e, index: positions[e.index], detail: e.detail.replace(/^input\[\d+\]/, `examples[${positions[e.index]}]`) })), all.length, error.headers) ?? error
}

/** Embeds the image examples with `model` (the pin's pooling and normalisation); embedding examples pass through. */
async function embedExamples (app: FastifyInstance, request: FastifyRequest, model: LoadedModel | undefined, pin: EmbeddingPin, examples: IncomingExample[], dim?: number): Promise<NewExample[]> {
  const D = dim ?? model?.manifest.dims.embed_dim ?? 0
  // given embeddings first (cheap), each named by its position among the examples
  mapItems(examples, (e) => { if (e.embedding !== undefined) embeddingsMatrix([e.embedding], D) })
  const withImages = examples.filter((e) => e.image !== undefined)
  let vectors: Float32Array[] = []
  if (withImages.length > 0) {
    if (model === undefined) throw new Error('images to embed but no model. This is a bug.')
    try {
      vectors = await embedInChunks(model, withImages.map((e) => e.image as Buffer), {
        pooling: pin.pooling, normalize: pin.normalize, limits: app.config, chunkSize: app.config.maxImagesPerRequest,
        run: { signal: request.clientSignal, deadline: request.deadline }, metrics: app.metrics
      })
    } catch (error) {
      throw toExampleIndexes(error, examples, withImages)
    }
  }
  let next = 0
  return examples.map((e) => e.image !== undefined
    ? { label: e.label, embedding: vectors[next++], image: e.image }
    : { label: e.label, embedding: e.embedding as number[], image: null })
}

function toView (c: ClassifierHead): Classifier {
  return {
    object: 'classifier',
    id: c.id,
    name: c.name || c.id,
    method: c.method,
    version: c.version,
    labels: c.labels.map((label) => ({ label, count: c.counts.get(label) ?? 0 })),
    num_examples: c.numExamples,
    cross_validation: c.cv,
    model: c.pin.model,
    model_sha256: c.pin.sha256,
    pooling: c.pin.pooling,
    normalize: c.pin.normalize,
    dim: c.dim,
    keep_images: c.keepImages,
    refittable: c.refittable,
    created_at: c.createdAt,
    updated_at: c.updatedAt
  }
}

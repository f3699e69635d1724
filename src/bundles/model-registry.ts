/**
 * The loaded models: one verified bundle each, one InferenceBackend (onnxruntime session) and one Batcher
 * per graph.
 *
 * How features run a graph (every feature goes through the batcher this way):
 *
 *   const model = registry.get(request.body.model)          // ApiError MODEL_NOT_FOUND if unknown
 *   const { outputs, queueMs, inferenceMs } = await model.run('encoder',
 *     { images: float32Tensor(pixels, [N, 3, H, W]), ids_keep: int64Tensor(ids, [N, K]) },
 *     { signal: request.clientSignal, deadline: request.deadline })  // see src/http/plugins/request-context.ts
 *   outputs.latent                                           // float32 (N, 1+K, D)
 *
 * Graph names and tensor names are the manifest's: 'encoder' (images, ids_keep -> latent),
 * 'decoder' (latent, ids_restore -> pred; absent from format-2 bundles of encoder-only checkpoints: check
 * model.hasGraph('decoder') and throw ApiError('MODEL_NO_DECODER') otherwise), 'keep_scores' (images ->
 * keep_scores; method clmae only: check model.hasGraph('keep_scores') and throw ApiError('MODEL_NO_MASKING_MODULE')
 * otherwise). Manifest formats 1 and 2 load the same way (src/bundles/manifest.ts).
 * Rows of one request may share batches with other requests; outputs come back in the request's order.
 */
import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import { ApiError } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { InferenceBackend } from '../inference/backend.js'
import { Batcher, type RunOptions, type RunResult } from '../inference/batcher.js'
import { createOnnxBackend } from '../inference/onnx-backend.js'
import type { GraphCacheReport, GraphCacheSpec } from '../inference/ort-graph-cache.js'
import { tensorSize, type Tensor } from '../inference/tensor.js'
import { BundleError } from './bundle-error.js'
import { readBundle, type VerifiedBundle } from './bundle-reader.js'
import type { GraphName, GraphSpec, Manifest } from './manifest.js'

export type BackendFactory = (path: string, graph: GraphName, manifest: Manifest) => Promise<InferenceBackend>

export type RegistryLogger = Pick<Logger, 'info' | 'warn' | 'error'>

export class LoadedModel {
  readonly id: string
  readonly manifest: Manifest
  readonly dir: string
  /** sha256 hex of each graph file, verified at load */
  readonly sha256: Partial<Record<GraphName, string>>
  private readonly backends: Map<GraphName, InferenceBackend>
  private readonly batchers: Map<GraphName, Batcher>

  constructor (bundle: VerifiedBundle, backends: Map<GraphName, InferenceBackend>, config: Config, metrics?: Metrics) {
    this.id = bundle.manifest.name
    this.manifest = bundle.manifest
    this.dir = bundle.dir
    this.sha256 = Object.fromEntries(Object.entries(bundle.manifest.graphs).map(([g, s]) => [g, (s as GraphSpec).sha256]))
    this.backends = backends
    this.batchers = new Map()
    for (const [graph, backend] of backends) {
      this.batchers.set(graph, new Batcher(backend, {
        maxBatchSize: config.maxBatchSize,
        maxWaitMs: config.maxWaitMs,
        maxQueue: config.maxQueue,
        retryAfterSeconds: config.retryAfterSeconds,
        model: this.id,
        graph
      }, metrics))
    }
  }

  /** the execution provider of the encoder session ('cpu' or 'cuda') */
  get executionProvider (): string {
    return this.backends.get('encoder')?.executionProvider ?? 'cpu'
  }

  hasGraph (graph: GraphName): boolean {
    return this.batchers.has(graph)
  }

  /** images waiting in this model's queues, by graph */
  queueDepths (): Partial<Record<GraphName, number>> {
    return Object.fromEntries([...this.batchers].map(([g, b]) => [g, b.depth]))
  }

  /** Runs `graph` on N rows through its batcher. Feeds and outputs are named as in the manifest. */
  run (graph: GraphName, feeds: Record<string, Tensor>, options: RunOptions = {}): Promise<RunResult> {
    const batcher = this.batchers.get(graph)
    if (batcher === undefined) {
      if (graph === 'keep_scores') return Promise.reject(new ApiError('MODEL_NO_MASKING_MODULE', `model ${this.id} (method ${this.manifest.method}) has no learned masking module`))
      if (graph === 'decoder') return Promise.reject(new ApiError('MODEL_NO_DECODER', `model ${this.id} has no decoder (an encoder-only checkpoint)`))
      return Promise.reject(new Error(`model ${this.id} has no graph ${graph}. This is a bug.`))
    }
    return batcher.submit(feeds, options)
  }

  /** Runs every graph once on zeros (batch 1 and the max batch), so the first request does not pay for it. */
  async warmUp (maxBatchSize: number): Promise<void> {
    for (const [graph, backend] of this.backends) {
      const spec = this.manifest.graphs[graph] as GraphSpec
      for (const n of new Set([1, maxBatchSize])) await backend.run(warmUpFeeds(spec, this.manifest, n))
    }
  }

  async drain (): Promise<void> {
    await Promise.all([...this.batchers.values()].map((b) => b.drain()))
  }

  async close (): Promise<void> {
    await Promise.all([...this.backends.values()].map((b) => b.close()))
  }
}

/** Zeros for float inputs and 0..L-1 style indices for int64 inputs; N rows, K = kept patches at the bundle's mask ratio. */
function warmUpFeeds (spec: GraphSpec, manifest: Manifest, n: number): Record<string, Tensor> {
  const L = manifest.num_patches
  const K = Math.floor(L * (1 - manifest.mask_ratio))
  const feeds: Record<string, Tensor> = {}
  for (const input of spec.inputs) {
    const dims = input.shape.map((d) => d === 'N' ? n : d === 'K' ? K : d === '1+K' ? 1 + K : typeof d === 'number' ? d : 1)
    const size = tensorSize(dims)
    if (input.dtype === 'float32') {
      feeds[input.name] = { type: 'float32', data: new Float32Array(size), dims }
    } else {
      const last = dims[dims.length - 1]
      feeds[input.name] = { type: 'int64', data: BigInt64Array.from({ length: size }, (_, i) => BigInt(i % last)), dims }
    }
  }
  return feeds
}

/** The cache identity of a graph: its sha256 and its external data's, as the verified manifest states them. */
function graphCacheSpec (dir: string, spec: GraphSpec): GraphCacheSpec {
  return { dir, sourceSha256: [spec.sha256, ...(spec.external_data ?? []).map((d) => d.sha256)] }
}

function logGraphCache (logger: RegistryLogger, path: string, graph: GraphName, report: GraphCacheReport): void {
  const fields = { path, graph, cache: report.outcome, entry: report.entry, reason: report.reason, openMs: Math.round(report.openMs) }
  if (report.outcome === 'hit' || report.outcome === 'miss') logger.info(fields, `optimised graph ${report.outcome === 'hit' ? 'loaded from' : 'written to'} the ort cache`)
  else if (report.outcome === 'rebuilt') logger.warn(fields, 'ort cache entry invalid; rebuilt from the bundle graph')
  else logger.warn(fields, 'ort cache not written; the graph was optimised from the bundle')
}

export class ModelRegistry {
  private constructor (private readonly models: Map<string, LoadedModel>, readonly defaultModel: string) {}

  /** A registry with no models (OpenAPI generation, tests of routes that need none). */
  static empty (defaultModel: string): ModelRegistry {
    return new ModelRegistry(new Map(), defaultModel)
  }

  /** A registry over models built elsewhere (tests with fake backends). */
  static of (models: LoadedModel[], defaultModel: string): ModelRegistry {
    return new ModelRegistry(new Map(models.map((m) => [m.id, m])), defaultModel)
  }

  /**
   * Loads the bundles of config.modelsDir (or only config.models). A bundle that fails verification is
   * refused: fatal for the default model and for bundles named in config.models, logged and skipped otherwise.
   */
  static async load (config: Config, options: { logger: RegistryLogger, metrics?: Metrics, backendFactory?: BackendFactory }): Promise<ModelRegistry> {
    const root = resolve(config.modelsDir)
    const { logger } = options
    const factory: BackendFactory = options.backendFactory ?? ((path, graph, manifest) => createOnnxBackend(path, {
      executionProvider: config.executionProvider,
      intraOpThreads: config.ortIntraOpThreads,
      allowSpinning: config.ortAllowSpinning,
      thread: config.inferenceThread ? 'worker' : 'main',
      onFallback: (reason) => logger.warn({ path, graph, reason }, 'cuda execution provider unavailable; using cpu'),
      graphCache: config.ortCacheDir === '' ? undefined : graphCacheSpec(config.ortCacheDir, manifest.graphs[graph] as GraphSpec),
      onGraphCache: (report) => logGraphCache(logger, path, graph, report)
    }))
    let names = config.models
    if (names.length === 0) {
      try {
        // a bundle is a directory with a manifest.json; other folders (model cards, run logs) are not bundles
        names = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory() && existsSync(join(root, d.name, 'manifest.json'))).map((d) => d.name).sort()
      } catch (error) {
        throw new BundleError('BUNDLE_MANIFEST_MISSING', `models directory ${root} cannot be read (${(error as Error).message}); set CLMAE_MODELS_DIR / --models-dir`, { cause: error })
      }
    }
    const models = new Map<string, LoadedModel>()
    for (const name of names) {
      const dir = join(root, name)
      const required = config.models.includes(name) || name === config.defaultModel
      try {
        const bundle = await readBundle(dir)
        if (bundle.manifest.name !== basename(dir)) logger.warn({ dir, name: bundle.manifest.name }, 'bundle directory name differs from manifest name; the manifest name is the model id')
        if (models.has(bundle.manifest.name)) throw new BundleError('BUNDLE_MANIFEST_INVALID', `${join(dir, 'manifest.json')}: model name ${bundle.manifest.name} is already loaded from another directory`)
        const backends = new Map<GraphName, InferenceBackend>()
        for (const [graph, path] of Object.entries(bundle.graphPaths) as Array<[GraphName, string]>) {
          try {
            backends.set(graph, await factory(path, graph, bundle.manifest))
          } catch (error) {
            throw new BundleError('BUNDLE_SESSION_FAILED', `${path}: onnxruntime could not create a session (${(error as Error).message})`, { cause: error })
          }
        }
        const model = new LoadedModel(bundle, backends, config, options.metrics)
        models.set(model.id, model)
        logger.info({ model: model.id, method: model.manifest.method, executionProvider: model.executionProvider, sha256: model.sha256 }, 'bundle loaded')
      } catch (error) {
        if (required || !(error instanceof BundleError)) throw error
        logger.error({ dir, code: error.code, err: error.message }, 'bundle refused')
      }
    }
    if (!models.has(config.defaultModel)) {
      throw new BundleError('BUNDLE_MANIFEST_MISSING', `default model ${config.defaultModel} is not among the loaded bundles in ${root} (loaded: ${[...models.keys()].join(', ') || 'none'}); set CLMAE_DEFAULT_MODEL / --default-model`)
    }
    return new ModelRegistry(models, config.defaultModel)
  }

  list (): LoadedModel[] {
    return [...this.models.values()]
  }

  /** The named model, or the default one when name is undefined; ApiError MODEL_NOT_FOUND otherwise. */
  get (name?: string): LoadedModel {
    const id = name ?? this.defaultModel
    const model = this.models.get(id)
    if (model === undefined) throw new ApiError('MODEL_NOT_FOUND', `no loaded model is named ${JSON.stringify(id)}; loaded: ${[...this.models.keys()].join(', ') || 'none'}`)
    return model
  }

  async warmUp (maxBatchSize: number): Promise<void> {
    for (const model of this.models.values()) await model.warmUp(maxBatchSize)
  }

  async drain (): Promise<void> {
    await Promise.all(this.list().map((m) => m.drain()))
  }

  async close (): Promise<void> {
    await Promise.all(this.list().map((m) => m.close()))
  }
}

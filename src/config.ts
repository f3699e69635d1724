/**
 * Every service setting, declared once (style rule 4): one TypeBox object where each key has a default,
 * a description and a unit-bearing name. Each key `fooBarMs` is read from the env var `CLMAE_FOO_BAR_MS`
 * and the CLI flag `--foo-bar-ms` (the flag wins). Start-up fails naming the bad key.
 * Add a setting with one entry per line in ConfigSchema; nothing else needs to change.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

const LIST = { 'x-list': true } // comma-separated in env/CLI
const SECRET = { 'x-secret': true } // redacted when the config is printed

export const ConfigSchema = Type.Object({
  host: Type.String({ default: '127.0.0.1', description: 'interface to listen on (0.0.0.0 in containers)' }),
  port: Type.Integer({ default: 8080, minimum: 0, maximum: 65535, description: 'TCP port (0 = any free port)' }),
  logLevel: Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')], { default: 'info', description: 'pino log level' }),
  modelsDir: Type.String({ default: './models', description: 'directory holding one bundle directory per model' }),
  models: Type.Array(Type.String(), { default: [], ...LIST, description: 'bundle directory names to load (empty = every bundle in modelsDir)' }),
  defaultModel: Type.String({ default: 'clmae-vit-mini-p8-64', description: 'model used when a request names none; must load' }),
  executionProvider: Type.Union([Type.Literal('cpu'), Type.Literal('cuda')], { default: 'cpu', description: 'onnxruntime execution provider; cuda needs onnxruntime-node installed with ONNXRUNTIME_NODE_INSTALL=cuda12 and falls back to cpu with a warning' }),
  ortIntraOpThreads: Type.Integer({ default: 0, minimum: 0, description: 'onnxruntime intra-op threads per session (0 = onnxruntime default, one per core)' }),
  inferenceThread: Type.Boolean({ default: true, description: 'run the onnxruntime sessions on one worker thread, off the event loop (onnxruntime-node runs a batch synchronously); false runs them on the main thread, as before 2026-12-03' }),
  ortCacheDir: Type.String({ default: '', description: 'directory of onnxruntime\'s optimised graphs, kept between starts (keyed by graph sha256, onnxruntime version, optimisation level and CPU flags; checked by sha256 and rebuilt when damaged; replicas may share it); must exist and be writable, else start-up logs it and optimises every time; empty = no cache' }),
  ortAllowSpinning: Type.Boolean({ default: false, description: 'let idle onnxruntime threads spin-wait; off by default: spinning burned 45% more CPU per image on a 2-core host where image decoding runs at the same time' }),
  apiKeys: Type.Array(Type.String({ minLength: 8 }), { default: [], ...LIST, ...SECRET, description: 'accepted API keys (Authorization: Bearer or X-API-Key); empty = no auth on /v1' }),
  protectMetrics: Type.Boolean({ default: false, description: 'require an API key on /metrics too' }),
  bodyLimitBytes: Type.Integer({ default: 16 * 1024 * 1024, minimum: 1024, description: 'largest request body (JSON, multipart or raw image)' }),
  classifierBodyLimitBytes: Type.Integer({ default: 64 * 1024 * 1024, minimum: 1024, description: 'largest body of classifier create, add-examples and import (many examples, or an export with its embeddings)' }),
  maxImageBytes: Type.Integer({ default: 8 * 1024 * 1024, minimum: 64, description: 'largest encoded image' }),
  maxImagePixels: Type.Integer({ default: 40_000_000, minimum: 1, description: 'largest decoded image (width x height), enforced before decoding (sharp limitInputPixels)' }),
  minImageSide: Type.Integer({ default: 8, minimum: 1, description: 'shortest accepted image side in pixels' }),
  maxImagesPerRequest: Type.Integer({ default: 32, minimum: 1, description: 'most images in one request (JSON list or multipart files)' }),
  allowedFormats: Type.Array(Type.Union([Type.Literal('jpeg'), Type.Literal('png'), Type.Literal('webp'), Type.Literal('gif'), Type.Literal('tiff'), Type.Literal('avif'), Type.Literal('heif')]), { default: ['jpeg', 'png', 'webp', 'gif', 'tiff'], ...LIST, description: 'accepted image formats (as sharp names them)' }),
  preprocessResize: Type.Union([Type.Literal('pillow'), Type.Literal('sharp')], { default: 'sharp', description: 'resize of the eval transform: sharp = the fast path (libvips resize after JPEG shrink-on-load; embeddings within cosine 0.9998 of the exact ones on the 30 test photos, few-shot accuracy within the seeds\' std; about a third of the CPU per photo), pillow = Pillow\'s resampling on worker threads (identical to the training transform, for audits); see README, Preprocessing' }),
  decodeConcurrency: Type.Integer({ default: 0, minimum: 0, description: 'most images decoded and resized at once per process (0 = one per core); the others wait their turn' }),
  decodeBudgetBytes: Type.Integer({ default: 512 * 1024 * 1024, minimum: 1024 * 1024, description: 'most decode memory admitted at once per process, waiting included: per image width x height x 3 plus any frame its decoder holds whole (rotating EXIF orientation, WebP, GIF; see README); an image that does not fit gets 503 DECODE_BUDGET_EXCEEDED with Retry-After, one larger than the whole budget 413 IMAGE_TOO_MANY_PIXELS. At least 3 x maxImagePixels' }),
  resampleWorkers: Type.Integer({ default: 0, minimum: 0, description: 'worker threads of the exact (pillow) resampler, which keep resizing off the event loop (0 = one per core)' }),
  sharpConcurrency: Type.Integer({ default: 1, minimum: 0, description: 'libvips threads per image (0 = one per core); images run in parallel on the libuv pool (UV_THREADPOOL_SIZE)' }),
  maxBatchSize: Type.Integer({ default: 4, minimum: 1, maximum: 1024, description: 'most images per inference call of one graph (dynamic batching)' }),
  maxWaitMs: Type.Number({ default: 2, minimum: 0, description: 'longest time the first queued image waits for a batch to fill' }),
  maxQueue: Type.Integer({ default: 256, minimum: 1, description: 'most images waiting per graph; beyond it requests get 503 QUEUE_FULL' }),
  retryAfterSeconds: Type.Integer({ default: 1, minimum: 0, description: 'Retry-After sent with QUEUE_FULL and SERVICE_UNAVAILABLE' }),
  requestDeadlineMs: Type.Integer({ default: 30_000, minimum: 1, maximum: 2 ** 31 - 1 - 60_000, description: 'a request not answered within this time gets 504 DEADLINE_EXCEEDED (its queued work is dropped); a body not received within it gets 408 REQUEST_TIMEOUT' }),
  shutdownTimeoutMs: Type.Integer({ default: 10_000, minimum: 0, description: 'on SIGTERM, longest wait for queued work before exiting' }),
  dbPath: Type.String({ default: './data/clmae.sqlite', description: 'SQLite file of the few-shot classifier store (one service process per file; unused when databaseUrl is set)' }),
  databaseUrl: Type.String({ default: '', ...SECRET, description: 'postgres://user:password@host:port/database of a PostgreSQL classifier store shared by many replicas; empty = SQLite at dbPath' }),
  databasePoolSize: Type.Integer({ default: 16, minimum: 2, description: 'most PostgreSQL connections per replica (a refit holds one for its duration)' }),
  databaseCheckIntervalMs: Type.Integer({ default: 5000, minimum: 100, description: 'how often the store is checked while it is unreachable (and while it is up), for /readyz and clmae_database_up' }),
  classifierCacheBytes: Type.Integer({ default: 256 * 1024 * 1024, minimum: 0, description: 'bytes of decoded fitted probes kept in memory per replica, by (classifier, version); 0 = decode on every predict' }),
  classifierFitQueue: Type.Integer({ default: 4, minimum: 0, description: 'fits waiting behind the running one per replica; beyond it create / add-examples / re-embed get 503 CLASSIFIER_FIT_QUEUE_FULL' }),
  classifierFitTimeoutMs: Type.Integer({ default: 180_000, minimum: 100, description: 'longest fit (cross-validation included) before 504 CLASSIFIER_FIT_TIMEOUT; set with classifierMaxExamples and classifierMaxClasses: a logreg fit at those limits at D = 768 took 33-35 s on a quiet 2-core host, 65-125 s on a busy one (npm run bench:fewshot-fit -- --sizes 1000x20 --dim 768)' }),
  maxClassifiers: Type.Integer({ default: 1000, minimum: 1, description: 'most stored few-shot classifiers; creating one more is 409 CLASSIFIER_LIMIT_REACHED' }),
  classifierMaxExamplesPerRequest: Type.Integer({ default: 256, minimum: 1, description: 'most labelled examples in one create / add-examples request (413 CLASSIFIER_TOO_MANY_EXAMPLES)' }),
  classifierMaxExamples: Type.Integer({ default: 1000, minimum: 2, description: 'most examples one classifier holds (422 CLASSIFIER_FULL); with classifierMaxClasses it bounds the logreg fit time (see classifierFitTimeoutMs)' }),
  classifierMaxClasses: Type.Integer({ default: 20, minimum: 2, description: 'most labels of one classifier (422 CLASSIFIER_TOO_MANY_CLASSES); with classifierMaxExamples it bounds the logreg fit time (see classifierFitTimeoutMs)' }),
  classifierMaxLabelChars: Type.Integer({ default: 64, minimum: 1, description: 'longest label, in characters (400 CLASSIFIER_LABEL_TOO_LONG)' })
}, { additionalProperties: false })

export type Config = Static<typeof ConfigSchema>

export class ConfigError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

export function envName (key: string): string {
  return 'CLMAE_' + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase()
}

export function flagName (key: string): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())
}

const KEYS = Object.keys(ConfigSchema.properties) as (keyof Config)[]

function schemaOf (key: keyof Config): TSchema {
  return ConfigSchema.properties[key]
}

/** Parses one raw string for `key` into the schema's JS type (still unvalidated). */
function parseRaw (key: keyof Config, raw: string, source: string): unknown {
  const schema = schemaOf(key)
  if (schema['x-list']) return raw.split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (schema.type === 'integer' || schema.type === 'number') {
    const n = Number(raw)
    if (raw.trim() === '' || !Number.isFinite(n)) throw new ConfigError(`${source}: expected a number, got ${JSON.stringify(raw)}`)
    return n
  }
  if (schema.type === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true
    if (/^(0|false|no|off)$/i.test(raw)) return false
    throw new ConfigError(`${source}: expected true or false, got ${JSON.stringify(raw)}`)
  }
  return raw
}

/**
 * Resolves the config: defaults < env (CLMAE_*) < CLI flags (--kebab-case, `--flag value` or `--flag=value`;
 * a boolean flag alone means true) < overrides (tests). Throws ConfigError naming the bad key.
 */
export function loadConfig (options: { argv?: string[], env?: NodeJS.ProcessEnv, overrides?: Partial<Config> } = {}): Config {
  const env = options.env ?? process.env
  const argv = options.argv ?? []
  const raw: Record<string, unknown> = {}
  for (const key of KEYS) raw[key] = structuredClone(schemaOf(key).default)

  for (const key of KEYS) {
    const value = env[envName(key)]
    if (value !== undefined) raw[key] = parseRaw(key, value, envName(key))
  }
  const byFlag = new Map(KEYS.map((k) => [flagName(k), k]))
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)}; flags look like --port 8080`)
    const eq = arg.indexOf('=')
    const flag = eq === -1 ? arg : arg.slice(0, eq)
    const key = byFlag.get(flag)
    if (key === undefined) throw new ConfigError(`unknown flag ${flag}; run with --help for the list`)
    let value: string
    if (eq !== -1) value = arg.slice(eq + 1)
    else if (schemaOf(key).type === 'boolean' && (argv[i + 1] === undefined || argv[i + 1].startsWith('--'))) value = 'true'
    else if (argv[i + 1] === undefined) throw new ConfigError(`${flag} needs a value`)
    else value = argv[++i]
    raw[key] = parseRaw(key, value, flag)
  }
  Object.assign(raw, options.overrides ?? {})
  return validateConfig(raw)
}

export function validateConfig (raw: Record<string, unknown>): Config {
  for (const key of Object.keys(raw)) {
    if (!KEYS.includes(key as keyof Config)) throw new ConfigError(`unknown setting ${key}`)
  }
  const firstError = Value.Errors(ConfigSchema, raw).First()
  if (firstError !== undefined) {
    const key = firstError.path.split('/')[1] as keyof Config
    const shown = schemaOf(key)['x-secret'] === true ? '<redacted>' : JSON.stringify(firstError.value) // a secret is never printed
    throw new ConfigError(`invalid ${key} (${envName(key)} / ${flagName(key)}): ${firstError.message}; got ${shown}`)
  }
  const config = raw as Config
  if (config.maxImagesPerRequest > config.maxQueue) {
    throw new ConfigError(`maxImagesPerRequest (${config.maxImagesPerRequest}) must not exceed maxQueue (${config.maxQueue}): such a request could never be queued`)
  }
  if (config.decodeBudgetBytes < 3 * config.maxImagePixels) {
    throw new ConfigError(`decodeBudgetBytes (${config.decodeBudgetBytes}) must be at least 3 x maxImagePixels (${3 * config.maxImagePixels}): an image at the pixel limit could never be decoded`)
  }
  if (config.maxImageBytes > config.bodyLimitBytes) {
    throw new ConfigError(`maxImageBytes (${config.maxImageBytes}) must not exceed bodyLimitBytes (${config.bodyLimitBytes})`)
  }
  return config
}

/** The config with secrets replaced, for the start-up log line. */
export function redactConfig (config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config }
  for (const key of KEYS) {
    if (schemaOf(key)['x-secret']) out[key] = (config[key] as string | string[]).length === 0 ? config[key] : '<redacted>'
  }
  return out
}

/** `--help` text: one line per setting with its flag, env var, default and description. */
export function configHelp (): string {
  const lines = ['Settings (CLI flag / environment variable, default):', '']
  for (const key of KEYS) {
    const schema = schemaOf(key)
    lines.push(`  ${flagName(key)}  ${envName(key)}  (default ${JSON.stringify(schema.default)})`)
    lines.push(`      ${schema.description as string}`)
  }
  return lines.join('\n')
}

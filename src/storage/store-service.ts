/**
 * The classifier store as the service owns it: opened and migrated at start-up (warmUpApp, before
 * /readyz says 200; a store that cannot be opened stops start-up with a message naming it), watched
 * while the service runs, and closed with the app.
 *
 * Losing the store later does not take the service down: classifier routes answer 503
 * DATABASE_UNAVAILABLE with Retry-After (guard()), while embeddings, mask maps and reconstructions keep
 * being served; /readyz's body says `database: "unavailable"` and clmae_database_up is 0 until a check
 * (every databaseCheckIntervalMs) reaches it again.
 */
import { sql } from 'kysely'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import { ApiError } from '../errors.js'
import type { Metrics } from '../metrics.js'
import { ClassifierStore } from './classifier-store.js'
import { openStoreDatabase, StoreOpenError, type StoreDatabase } from './database.js'
import { ProbeCache } from './probe-cache.js'
import { purgeExpiredKeys } from './idempotency.js'

export type StoreState = 'closed' | 'up' | 'unavailable'

/** PostgreSQL connections a replica keeps beyond its refits' (predict, list, the store check) */
const READ_CONNECTIONS = 2

/** Errors that mean "the store cannot be reached or written", as opposed to a bug or a bad request. */
export function isStoreUnavailable (error: unknown): boolean {
  const e = error as { code?: unknown, message?: unknown } | null
  if (e === null || typeof e !== 'object') return false
  const code = typeof e.code === 'string' ? e.code : ''
  const message = typeof e.message === 'string' ? e.message : ''
  if (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EPIPE|EHOSTUNREACH)$/.test(code)) return true
  if (/^(08...|57P0[123]|53300)$/.test(code)) return true // PostgreSQL: connection exception, shutdown, too many connections
  if (/^SQLITE_(IOERR|CANTOPEN|FULL|READONLY|CORRUPT|NOTADB)/.test(code)) return true
  return /Connection terminated|connection error|timeout exceeded when trying to connect|not currently accepting connections|database connection is not open|Client was closed|Cannot use a pool after calling end/i.test(message)
}

export class ClassifierStoreService {
  state: StoreState = 'closed'
  readonly cache: ProbeCache
  private database: StoreDatabase | undefined
  private classifiers: ClassifierStore | undefined
  private timer: NodeJS.Timeout | undefined
  private lastPurge = 0

  constructor (private readonly config: Config, private readonly deps: { metrics: Metrics, log: FastifyBaseLogger }) {
    this.cache = new ProbeCache(config.classifierCacheBytes)
  }

  /** Opens and migrates the store; throws StoreOpenError naming it when it cannot. */
  async open (): Promise<void> {
    if (this.database !== undefined) return
    const { databaseUrl, databasePoolSize, classifierFitQueue, retryAfterSeconds } = this.config
    // a refit section holds a connection for its fit: those of one replica (the running fit and the
    // queued ones) must leave connections for reads (predict, list) and the store check
    const maxRefitSections = classifierFitQueue + 1
    if (databaseUrl !== '' && databasePoolSize < maxRefitSections + READ_CONNECTIONS) {
      throw new StoreOpenError(`--database-pool-size ${databasePoolSize} is too small for --classifier-fit-queue ${classifierFitQueue}: refits hold up to ${maxRefitSections} connections and reads need ${READ_CONNECTIONS} more; set CLMAE_DATABASE_POOL_SIZE to at least ${maxRefitSections + READ_CONNECTIONS}`)
    }
    const database = await openStoreDatabase({ databaseUrl, dbPath: this.config.dbPath, poolSize: databasePoolSize })
    this.database = database
    this.classifiers = new ClassifierStore(database.db, database.dialect, {
      lockTimeoutMs: this.config.classifierFitTimeoutMs + this.config.requestDeadlineMs,
      maxRefitSections,
      refitSectionsFull: () => {
        this.deps.metrics.rejections.inc({ reason: 'CLASSIFIER_FIT_QUEUE_FULL' })
        return new ApiError('CLASSIFIER_FIT_QUEUE_FULL', `${maxRefitSections} refits are running or waiting on this replica (CLMAE_CLASSIFIER_FIT_QUEUE + 1); retry later`,
          { headers: { 'retry-after': String(retryAfterSeconds) } })
      }
    })
    this.setState('up')
    this.deps.metrics.classifiers.set(await this.classifiers.count())
    this.deps.log.info({ store: database.description, migratedFrom: database.migratedFrom }, 'classifier store open')
    this.timer = setInterval(() => { void this.check() }, this.config.databaseCheckIntervalMs)
    this.timer.unref()
  }

  get description (): string | undefined { return this.database?.description }
  /** the underlying database (tests) */
  get raw (): StoreDatabase | undefined { return this.database }

  /** The store, or 503 DATABASE_UNAVAILABLE while it is not open. */
  get store (): ClassifierStore {
    if (this.classifiers === undefined) throw this.unavailable('the classifier store is not open yet (starting)')
    return this.classifiers
  }

  /**
   * Runs a classifier request; an error that says the store cannot be reached becomes 503
   * DATABASE_UNAVAILABLE (and marks the store unavailable until a check reaches it).
   */
  async guard<T> (task: () => Promise<T>): Promise<T> {
    try {
      return await task()
    } catch (error) {
      if (error instanceof ApiError || !isStoreUnavailable(error)) throw error
      this.deps.log.warn({ err: error, store: this.database?.description }, 'classifier store unreachable')
      this.setState('unavailable')
      // the client learns that, not where: the store's host, file path and driver message stay in the log
      throw this.unavailable('the classifier store cannot be reached; classifier requests are refused until it answers again')
    }
  }

  /** One round trip to the store; sets the state (and the metric). */
  async check (): Promise<StoreState> {
    if (this.database === undefined) return this.state
    try {
      await sql`SELECT 1`.execute(this.database.db)
      if (Date.now() - this.lastPurge > 60 * 60 * 1000) { // Idempotency-Key records older than 24 h, hourly
        this.lastPurge = Date.now()
        await purgeExpiredKeys(this.database.db)
      }
      if (this.state !== 'up') this.deps.log.info({ store: this.database.description }, 'classifier store reachable again')
      this.setState('up')
    } catch (error) {
      if (this.state === 'up') this.deps.log.warn({ err: error, store: this.database.description }, 'classifier store unreachable')
      this.setState('unavailable')
    }
    return this.state
  }

  async close (): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    const database = this.database
    this.database = undefined
    this.classifiers = undefined
    this.state = 'closed'
    await database?.close()
  }

  private setState (state: StoreState): void {
    this.state = state
    this.deps.metrics.databaseUp.set(state === 'up' ? 1 : 0)
  }

  private unavailable (detail: string): ApiError {
    return new ApiError('DATABASE_UNAVAILABLE', detail, { headers: { 'retry-after': String(this.config.retryAfterSeconds) } })
  }
}

/**
 * Repository of few-shot classifiers over one Kysely query layer (SQLite or PostgreSQL): the fitted
 * probe (binary, probe-codec.ts), its pin (model, encoder sha256, pooling, normalize) and the examples'
 * embeddings (and images when the classifier keeps them). Every write is one transaction.
 *
 * Refits: the caller holds withRefitLock(id) around read, fit and write. On SQLite (one process per
 * file, enforced at open) an in-process lock per classifier is enough; on PostgreSQL the section also
 * runs in a transaction holding the classifier's row lock (SELECT ... FOR UPDATE), so refits of one
 * classifier are serialised across every replica, while reads (predict) never wait on it. Writes check
 * the version the fit started from, so a fit of a stale version is never stored.
 *
 * Such a section holds a pool connection for as long as it waits for the row lock and runs its fit, so
 * at most `maxRefitSections` are open per replica (`refitSectionsFull()` is thrown beyond it): without
 * a bound, refits waiting on other replicas' row locks could take every connection and every predict
 * would time out waiting for one, as if the store were gone.
 */
import { randomBytes } from 'node:crypto'
import { sql, type Kysely, type Selectable } from 'kysely'
import type { CrossValidationReport, EmbeddingPin, FittedProbe, ProbeMethod } from '../fewshot/classifiers.js'
import { ApiError } from '../errors.js'
import type { ClassifiersTable, StoreSchema } from './schema.js'
import type { StoreDialect } from './migrations/index.js'
import { decodeProbe, encodeProbe } from './probe-codec.js'

/** A classifier without its probe arrays: what views, pins and version checks need (one indexed row). */
export interface ClassifierHead {
  id: string
  name: string
  method: ProbeMethod
  version: number
  pin: EmbeddingPin
  keepImages: boolean
  dim: number
  /** class names, sorted (the probe's) */
  labels: string[]
  /** kNN's k */
  knnK?: number
  /** examples per label (a Map: labels are user input, never plain-object keys) */
  counts: Map<string, number>
  cv: CrossValidationReport
  /** false when imported without example embeddings: it can predict but not be refitted */
  refittable: boolean
  numExamples: number
  createdAt: string
  updatedAt: string
}

export interface StoredClassifier extends ClassifierHead {
  probe: FittedProbe
}

export interface NewExample {
  label: string
  /** (D) */
  embedding: ArrayLike<number>
  /** encoded image, stored only when the classifier keeps images */
  image?: Buffer | null
}

export interface StoredExample {
  id: number
  label: string
  /** (D) */
  embedding: Float32Array
  image: Buffer | null
}

/** What a refit produces from the full example list. */
export interface RefitResult {
  probe: FittedProbe
  counts: Map<string, number>
  cv: CrossValidationReport
}

export interface NewClassifier {
  name: string
  method: ProbeMethod
  pin: EmbeddingPin
  keepImages: boolean
  dim: number
  refittable: boolean
}

/** Runs inside a write's transaction after the write (e.g. recording the Idempotency-Key answer). */
export type WithinWrite = (db: Kysely<StoreSchema>, written: ClassifierHead) => Promise<void>

type HeadRow = Omit<Selectable<ClassifiersTable>, 'probe_data'>

const HEAD_COLUMNS = ['seq', 'id', 'name', 'method', 'version', 'model', 'model_sha256', 'pooling', 'normalize', 'keep_images', 'dim', 'probe_meta',
  'counts_json', 'cv_json', 'refittable', 'num_examples', 'created_at', 'updated_at'] as const

/** Rows inserted per statement (PostgreSQL allows 65,535 parameters per statement). */
const INSERT_BATCH = 100

function toFloat32Blob (values: ArrayLike<number>): Buffer {
  const f = Float32Array.from(values)
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength)
}

function fromFloat32Blob (blob: Uint8Array): Float32Array {
  // Copy: the Buffer may not be 4-byte aligned.
  const out = new Float32Array(blob.byteLength / 4)
  new Uint8Array(out.buffer).set(blob)
  return out
}

/** {label: count} as JSON; Object.fromEntries defines own properties, so `__proto__` is a label like any other */
function countsJson (counts: Map<string, number>): string {
  return JSON.stringify(Object.fromEntries(counts))
}

function toHead (row: HeadRow): ClassifierHead {
  const meta = JSON.parse(row.probe_meta) as { labels: string[], k?: number }
  return {
    id: row.id,
    name: row.name,
    method: row.method as ProbeMethod,
    version: row.version,
    pin: { model: row.model, sha256: row.model_sha256, pooling: row.pooling as EmbeddingPin['pooling'], normalize: row.normalize === 1 },
    keepImages: row.keep_images === 1,
    dim: row.dim,
    labels: meta.labels,
    ...(meta.k !== undefined ? { knnK: meta.k } : {}),
    counts: new Map(Object.entries(JSON.parse(row.counts_json) as Record<string, number>)),
    cv: JSON.parse(row.cv_json) as CrossValidationReport,
    refittable: row.refittable === 1,
    numExamples: row.num_examples,
    createdAt: row.created_at,
    updatedAt: row.updated_at
  }
}

export function createClassifierId (): string {
  return 'clf_' + randomBytes(8).toString('hex')
}

function notFound (id: string): ApiError {
  return new ApiError('CLASSIFIER_NOT_FOUND', `no classifier has id ${JSON.stringify(id)}`)
}

export interface RefitSectionOptions {
  /** longest wait for a classifier's row lock held by another replica (PostgreSQL) */
  lockTimeoutMs?: number
  /** most refit sections (each a transaction holding a connection) open at once on PostgreSQL; default unbounded */
  maxRefitSections?: number
  /** the error for a refit beyond maxRefitSections (the service's: 503 CLASSIFIER_FIT_QUEUE_FULL) */
  refitSectionsFull?: () => Error
}

/** Advisory lock key of creates on PostgreSQL: the classifier-count check and the insert are one step across replicas. */
const CREATE_LOCK_KEY = 7_020_332

export class ClassifierStore {
  /** in-process refit locks per classifier id (shared by the transaction-bound copies of this store) */
  private readonly locks: Map<string, Promise<unknown>>

  constructor (private readonly db: Kysely<StoreSchema>, readonly dialect: StoreDialect, options: RefitSectionOptions & { locks?: Map<string, Promise<unknown>>, sections?: { open: number } } = {}) {
    this.locks = options.locks ?? new Map()
    this.lockTimeoutMs = options.lockTimeoutMs ?? 120_000
    this.sectionOptions = options
    this.sections = options.sections ?? { open: 0 }
  }

  private readonly lockTimeoutMs: number
  private readonly sectionOptions: RefitSectionOptions
  /** PostgreSQL refit sections open now (shared by the transaction-bound copies) */
  private readonly sections: { open: number }

  /** the query layer (idempotency records share the store's transactions) */
  get kysely (): Kysely<StoreSchema> { return this.db }

  async count (): Promise<number> {
    const row = await this.db.selectFrom('classifiers').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
    return Number(row.n)
  }

  /** The classifier without its probe arrays (one indexed row). */
  async head (id: string): Promise<ClassifierHead | undefined> {
    const row = await this.db.selectFrom('classifiers').select(HEAD_COLUMNS).where('id', '=', id).executeTakeFirst()
    return row === undefined ? undefined : toHead(row)
  }

  /** The head or ApiError CLASSIFIER_NOT_FOUND. */
  async requireHead (id: string): Promise<ClassifierHead> {
    const found = await this.head(id)
    if (found === undefined) throw notFound(id)
    return found
  }

  /** The fitted probe of classifier `id` at `version`; undefined when it is gone or at another version. */
  async probe (id: string, version: number): Promise<FittedProbe | undefined> {
    const row = await this.db.selectFrom('classifiers').select(['probe_meta', 'probe_data']).where('id', '=', id).where('version', '=', version).executeTakeFirst()
    return row === undefined ? undefined : decodeProbe(row.probe_meta, row.probe_data)
  }

  /** Head and probe read together (tests, export). */
  async get (id: string): Promise<StoredClassifier | undefined> {
    const row = await this.db.selectFrom('classifiers').selectAll().where('id', '=', id).executeTakeFirst()
    return row === undefined ? undefined : { ...toHead(row), probe: decodeProbe(row.probe_meta, row.probe_data) }
  }

  async require (id: string): Promise<StoredClassifier> {
    const found = await this.get(id)
    if (found === undefined) throw notFound(id)
    return found
  }

  /** Oldest first; `cursor` is the opaque `next_cursor` of the previous page. */
  async list (options: { limit: number, cursor?: string }): Promise<{ items: ClassifierHead[], nextCursor: string | null }> {
    const after = options.cursor === undefined ? 0 : Number.parseInt(Buffer.from(options.cursor, 'base64url').toString('utf8'), 10)
    if (!Number.isSafeInteger(after) || after < 0 || after > 2 ** 31 - 1) throw new ApiError('REQUEST_VALIDATION_FAILED', 'cursor is not a value this API returned')
    const rows = await this.db.selectFrom('classifiers').select(HEAD_COLUMNS).where('seq', '>', after).orderBy('seq').limit(options.limit + 1).execute()
    const page = rows.slice(0, options.limit)
    const nextCursor = rows.length > options.limit ? Buffer.from(String(page[page.length - 1].seq)).toString('base64url') : null
    return { items: page.map(toHead), nextCursor }
  }

  /**
   * Stores a new classifier with its examples, refusing (CLASSIFIER_LIMIT_REACHED) when the store
   * already holds `maxClassifiers`. The check and the insert are one transaction (and one at a time
   * across PostgreSQL replicas).
   */
  async create (spec: NewClassifier, fit: RefitResult, examples: NewExample[], limits: { maxClassifiers: number }, within?: WithinWrite): Promise<ClassifierHead> {
    const id = createClassifierId()
    return await this.tx(async (db) => {
      if (this.dialect === 'postgres') await sql`SELECT pg_advisory_xact_lock(${CREATE_LOCK_KEY})`.execute(db)
      const store = this.bound(db)
      if (await store.count() >= limits.maxClassifiers) {
        throw new ApiError('CLASSIFIER_LIMIT_REACHED', `the store holds ${limits.maxClassifiers} classifiers (CLMAE_MAX_CLASSIFIERS); delete one first`)
      }
      const now = new Date().toISOString()
      const probe = encodeProbe(fit.probe)
      const { seq } = await db.insertInto('classifiers').values({
        id, name: spec.name, method: spec.method, version: 1, model: spec.pin.model, model_sha256: spec.pin.sha256, pooling: spec.pin.pooling,
        normalize: spec.pin.normalize ? 1 : 0, keep_images: spec.keepImages ? 1 : 0, dim: spec.dim, probe_meta: probe.meta, probe_data: probe.data,
        counts_json: countsJson(fit.counts), cv_json: JSON.stringify(fit.cv), refittable: spec.refittable ? 1 : 0, num_examples: examples.length,
        created_at: now, updated_at: now
      }).returning('seq').executeTakeFirstOrThrow()
      await store.insertExamples(seq, examples, spec.keepImages)
      if (spec.method === 'knn') await store.syncKnnIds(seq, fit.probe)
      const created = await store.requireHead(id)
      if (within !== undefined) await within(db, created)
      return created
    })
  }

  /** The examples in insertion order; images only when asked (they can be large: see imageChunks). */
  async examples (id: string, options: { withImages?: boolean } = {}): Promise<StoredExample[]> {
    const seq = await this.seqOf(id)
    const rows = await this.db.selectFrom('examples').select(['id', 'label', 'embedding']).$if(options.withImages === true, (q) => q.select('image'))
      .where('classifier_seq', '=', seq).orderBy('id').execute() as { id: number, label: string, embedding: Uint8Array, image?: Uint8Array | null }[]
    return rows.map((r) => ({ id: r.id, label: r.label, embedding: fromFloat32Blob(r.embedding), image: r.image == null ? null : Buffer.from(r.image) }))
  }

  /** The examples with their images, `size` at a time (re-embedding never holds every image at once). */
  async * imageChunks (id: string, size: number): AsyncGenerator<StoredExample[]> {
    const seq = await this.seqOf(id)
    let after = 0
    for (;;) {
      const rows = await this.db.selectFrom('examples').select(['id', 'label', 'embedding', 'image']).where('classifier_seq', '=', seq).where('id', '>', after)
        .orderBy('id').limit(size).execute()
      if (rows.length === 0) return
      after = rows[rows.length - 1].id
      yield rows.map((r) => ({ id: r.id, label: r.label, embedding: fromFloat32Blob(r.embedding), image: r.image == null ? null : Buffer.from(r.image) }))
      if (rows.length < size) return
    }
  }

  /**
   * Appends examples and stores `fit` (computed on every example: old then new) in one transaction; the
   * version goes up by one. `fromVersion` is the version the fit started from.
   */
  async addExamples (id: string, examples: NewExample[], fit: RefitResult, fromVersion: number, within?: WithinWrite): Promise<ClassifierHead> {
    return await this.tx(async (db) => {
      const store = this.bound(db)
      const current = await store.requireVersion(id, fromVersion)
      const seq = await store.seqOf(id)
      await store.insertExamples(seq, examples, current.keepImages)
      await store.saveFit(seq, fit, null, current.numExamples + examples.length)
      const written = await store.requireHead(id)
      if (within !== undefined) await within(db, written)
      return written
    })
  }

  /**
   * Replaces every example's embedding (`embeddings` by example id), pins the classifier to `pin` and
   * stores `fit` (computed on the new embeddings); the version goes up by one.
   */
  async reembed (id: string, pin: EmbeddingPin, embeddings: Map<number, ArrayLike<number>>, fit: RefitResult, fromVersion: number): Promise<ClassifierHead> {
    return await this.tx(async (db) => {
      const store = this.bound(db)
      const current = await store.requireVersion(id, fromVersion)
      const seq = await store.seqOf(id)
      const ids = (await db.selectFrom('examples').select('id').where('classifier_seq', '=', seq).orderBy('id').execute()).map((r) => r.id)
      if (ids.length !== embeddings.size || !ids.every((e) => embeddings.has(e))) throw conflict(id, 'its examples changed while it was being re-embedded')
      for (const exampleId of ids) {
        await db.updateTable('examples').set({ embedding: toFloat32Blob(embeddings.get(exampleId) as ArrayLike<number>) }).where('id', '=', exampleId).execute()
      }
      const dim = embeddings.size > 0 ? (embeddings.values().next().value as ArrayLike<number>).length : current.dim
      await store.saveFit(seq, fit, pin, current.numExamples, dim)
      return await store.requireHead(id)
    })
  }

  async delete (id: string): Promise<boolean> {
    return await this.tx(async (db) => {
      const seq = (await db.selectFrom('classifiers').select('seq').where('id', '=', id).executeTakeFirst())?.seq
      if (seq === undefined) return false
      // examples first: PostgreSQL honours ON DELETE CASCADE, but being explicit keeps SQLite files opened without foreign_keys clean too
      await db.deleteFrom('examples').where('classifier_seq', '=', seq).execute()
      return Number((await db.deleteFrom('classifiers').where('seq', '=', seq).executeTakeFirst()).numDeletedRows) === 1
    })
  }

  /**
   * Runs `task` (read, fit, write) while holding classifier `id`'s refit lock: in this process after
   * every earlier task of `id`, and on PostgreSQL inside a transaction holding the row lock, so no
   * other replica refits it meanwhile. `task` gets the store to use inside the section.
   */
  async withRefitLock<T> (id: string, task: (store: ClassifierStore) => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve()
    const run = previous.then(async () => await this.lockedSection(id, task), async () => await this.lockedSection(id, task))
    const settled = run.then(() => undefined, () => undefined)
    this.locks.set(id, settled)
    void settled.then(() => { if (this.locks.get(id) === settled) this.locks.delete(id) })
    return await run
  }

  private async lockedSection<T> (id: string, task: (store: ClassifierStore) => Promise<T>): Promise<T> {
    if (this.dialect === 'sqlite') return await task(this)
    const { maxRefitSections, refitSectionsFull } = this.sectionOptions
    if (maxRefitSections !== undefined && this.sections.open >= maxRefitSections) {
      throw refitSectionsFull?.() ?? new Error(`${maxRefitSections} refit sections are open on this replica`)
    }
    this.sections.open++
    try {
      return await this.transactionalSection(id, task)
    } finally {
      this.sections.open--
    }
  }

  private async transactionalSection<T> (id: string, task: (store: ClassifierStore) => Promise<T>): Promise<T> {
    return await this.db.transaction().execute(async (trx) => {
      await sql.raw(`SET LOCAL lock_timeout = ${Math.round(this.lockTimeoutMs)}`).execute(trx)
      try {
        const row = await trx.selectFrom('classifiers').select('id').where('id', '=', id).forUpdate().executeTakeFirst()
        if (row === undefined) throw notFound(id)
      } catch (error) {
        if ((error as { code?: string }).code === '55P03') throw conflict(id, 'another replica held it for longer than the lock timeout')
        throw error
      }
      return await task(this.bound(trx))
    })
  }

  /** This store over a transaction (same locks). */
  private bound (db: Kysely<StoreSchema>): ClassifierStore {
    return db === this.db ? this : new ClassifierStore(db, this.dialect, { ...this.sectionOptions, locks: this.locks, sections: this.sections })
  }

  private async tx<T> (fn: (db: Kysely<StoreSchema>) => Promise<T>): Promise<T> {
    if (this.db.isTransaction) return await fn(this.db)
    return await this.db.transaction().execute(fn)
  }

  /** The classifier (CLASSIFIER_NOT_FOUND if deleted meanwhile), checked to be still at `version`. */
  private async requireVersion (id: string, version: number): Promise<ClassifierHead> {
    const current = await this.requireHead(id)
    if (current.version !== version) throw conflict(id, `it moved from version ${version} to ${current.version} during the refit`)
    return current
  }

  private async seqOf (id: string): Promise<number> {
    const row = await this.db.selectFrom('classifiers').select('seq').where('id', '=', id).executeTakeFirst()
    if (row === undefined) throw notFound(id)
    return row.seq
  }

  private async insertExamples (seq: number, examples: NewExample[], keepImages: boolean): Promise<void> {
    for (let start = 0; start < examples.length; start += INSERT_BATCH) {
      const rows = examples.slice(start, start + INSERT_BATCH).map((e) => ({ classifier_seq: seq, label: e.label, embedding: toFloat32Blob(e.embedding), image: keepImages ? (e.image ?? null) : null }))
      await this.db.insertInto('examples').values(rows).execute()
    }
  }

  private async saveFit (seq: number, fit: RefitResult, pin: EmbeddingPin | null, numExamples: number, dim?: number): Promise<void> {
    const probe = encodeProbe(fit.probe)
    await this.db.updateTable('classifiers').set((eb) => ({
      version: eb('version', '+', 1),
      probe_meta: probe.meta,
      probe_data: probe.data,
      counts_json: countsJson(fit.counts),
      cv_json: JSON.stringify(fit.cv),
      num_examples: numExamples,
      updated_at: new Date().toISOString(),
      ...(pin !== null ? { model: pin.model, model_sha256: pin.sha256, pooling: pin.pooling, normalize: pin.normalize ? 1 : 0 } : {}),
      ...(dim !== undefined ? { dim } : {})
    })).where('seq', '=', seq).execute()
    if (fit.probe.state.method === 'knn') await this.syncKnnIds(seq, fit.probe)
  }

  /** kNN probes report neighbours by example id; the ids exist only once the rows are inserted. */
  private async syncKnnIds (seq: number, probe: FittedProbe): Promise<void> {
    if (probe.state.method !== 'knn') return
    const ids = (await this.db.selectFrom('examples').select('id').where('classifier_seq', '=', seq).orderBy('id').execute()).map((r) => r.id)
    if (ids.length !== probe.state.examples.length) return // imported without examples: keep the exported ids
    const encoded = encodeProbe({ ...probe, state: { ...probe.state, example_ids: ids } })
    await this.db.updateTable('classifiers').set({ probe_data: encoded.data }).where('seq', '=', seq).execute()
  }
}

export function conflict (id: string, why: string): ApiError {
  return new ApiError('CLASSIFIER_CONFLICT', `classifier ${id} changed meanwhile (${why}); send the request again`)
}

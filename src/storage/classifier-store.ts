/**
 * Repository of few-shot classifiers: the fitted probe, its pin (model, encoder sha256, pooling,
 * normalize) and the examples' embeddings (and images when the classifier keeps them). Every write is
 * one transaction; with the database's synchronous=FULL it is on disk when the call returns.
 *
 * Refits are computed by the caller (on a worker thread, from examples() plus the new ones) and stored
 * with the examples in one transaction that first checks the classifier's version is still the one the
 * fit was computed from, so the stored probe always matches the stored examples. The route serialises
 * refits per classifier, so a version mismatch is a bug, never a lost update.
 */
import { randomBytes } from 'node:crypto'
import type { CrossValidationReport, EmbeddingPin, FittedProbe, ProbeMethod } from '../fewshot/classifiers.js'
import { ApiError } from '../errors.js'
import type { SqliteDatabase } from './database.js'

export interface StoredClassifier {
  id: string
  name: string
  method: ProbeMethod
  version: number
  pin: EmbeddingPin
  keepImages: boolean
  dim: number
  probe: FittedProbe
  /** examples per label (a Map: labels are user input, never plain-object keys) */
  counts: Map<string, number>
  cv: CrossValidationReport
  /** false when imported without example embeddings: it can predict but not be refitted */
  refittable: boolean
  numExamples: number
  createdAt: string
  updatedAt: string
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

interface ClassifierRow {
  seq: number
  id: string
  name: string
  method: string
  version: number
  model: string
  model_sha256: string
  pooling: string
  normalize: number
  keep_images: number
  dim: number
  probe_json: string
  counts_json: string
  cv_json: string
  refittable: number
  created_at: string
  updated_at: string
  num_examples: number
}

function toFloat32Blob (values: ArrayLike<number>): Buffer {
  const f = Float32Array.from(values)
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength)
}

function fromFloat32Blob (blob: Buffer): Float32Array {
  // Copy: the Buffer may not be 4-byte aligned.
  const out = new Float32Array(blob.byteLength / 4)
  new Uint8Array(out.buffer).set(blob)
  return out
}

/** {label: count} as JSON; Object.fromEntries defines own properties, so `__proto__` is a label like any other */
function countsJson (counts: Map<string, number>): string {
  return JSON.stringify(Object.fromEntries(counts))
}

function toRecord (row: ClassifierRow): StoredClassifier {
  return {
    id: row.id,
    name: row.name,
    method: row.method as ProbeMethod,
    version: row.version,
    pin: { model: row.model, sha256: row.model_sha256, pooling: row.pooling as EmbeddingPin['pooling'], normalize: row.normalize === 1 },
    keepImages: row.keep_images === 1,
    dim: row.dim,
    probe: JSON.parse(row.probe_json) as FittedProbe,
    counts: new Map(Object.entries(JSON.parse(row.counts_json) as Record<string, number>)),
    cv: JSON.parse(row.cv_json) as CrossValidationReport,
    refittable: row.refittable === 1,
    numExamples: row.num_examples,
    createdAt: row.created_at,
    updatedAt: row.updated_at
  }
}

const SELECT = `SELECT c.*, (SELECT COUNT(*) FROM examples e WHERE e.classifier_seq = c.seq) AS num_examples FROM classifiers c`

export function createClassifierId (): string {
  return 'clf_' + randomBytes(8).toString('hex')
}

export class ClassifierStore {
  constructor (private readonly db: SqliteDatabase) {}

  count (): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM classifiers').get() as { n: number }).n
  }

  get (id: string): StoredClassifier | undefined {
    const row = this.db.prepare(`${SELECT} WHERE c.id = ?`).get(id) as ClassifierRow | undefined
    return row === undefined ? undefined : toRecord(row)
  }

  /** The classifier or ApiError CLASSIFIER_NOT_FOUND. */
  require (id: string): StoredClassifier {
    const found = this.get(id)
    if (found === undefined) throw new ApiError('CLASSIFIER_NOT_FOUND', `no classifier has id ${JSON.stringify(id)}`)
    return found
  }

  /** Oldest first; `cursor` is the opaque `next_cursor` of the previous page. */
  list (options: { limit: number, cursor?: string }): { items: StoredClassifier[], nextCursor: string | null } {
    const after = options.cursor === undefined ? 0 : Number.parseInt(Buffer.from(options.cursor, 'base64url').toString('utf8'), 10)
    if (!Number.isSafeInteger(after) || after < 0) throw new ApiError('REQUEST_VALIDATION_FAILED', 'cursor is not a value this API returned')
    const rows = this.db.prepare(`${SELECT} WHERE c.seq > ? ORDER BY c.seq LIMIT ?`).all(after, options.limit + 1) as ClassifierRow[]
    const page = rows.slice(0, options.limit)
    const nextCursor = rows.length > options.limit ? Buffer.from(String(page[page.length - 1].seq)).toString('base64url') : null
    return { items: page.map(toRecord), nextCursor }
  }

  /**
   * Stores a new classifier with its examples, refusing (CLASSIFIER_LIMIT_REACHED) when the store
   * already holds `maxClassifiers`. The check and the insert are one transaction.
   */
  create (spec: NewClassifier, fit: RefitResult, examples: NewExample[], limits: { maxClassifiers: number }): StoredClassifier {
    const id = createClassifierId()
    this.db.transaction(() => {
      if (this.count() >= limits.maxClassifiers) {
        throw new ApiError('CLASSIFIER_LIMIT_REACHED', `the store holds ${limits.maxClassifiers} classifiers (CLMAE_MAX_CLASSIFIERS); delete one first`)
      }
      const now = new Date().toISOString()
      const info = this.db.prepare(`INSERT INTO classifiers (id, name, method, version, model, model_sha256, pooling, normalize, keep_images, dim,
          probe_json, counts_json, cv_json, refittable, created_at, updated_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(id, spec.name, spec.method, spec.pin.model, spec.pin.sha256, spec.pin.pooling, spec.pin.normalize ? 1 : 0, spec.keepImages ? 1 : 0,
          spec.dim, JSON.stringify(fit.probe), countsJson(fit.counts), JSON.stringify(fit.cv), spec.refittable ? 1 : 0, now, now)
      this.insertExamples(Number(info.lastInsertRowid), examples, spec.keepImages)
      if (spec.method === 'knn') this.syncKnnIds(id)
    })()
    return this.require(id)
  }

  /** The examples in insertion order; images only when asked (they can be large). */
  examples (id: string, options: { withImages?: boolean } = {}): StoredExample[] {
    const seq = this.seqOf(id)
    const rows = this.db.prepare(`SELECT id, label, embedding${options.withImages === true ? ', image' : ''} FROM examples WHERE classifier_seq = ? ORDER BY id`)
      .all(seq) as { id: number, label: string, embedding: Buffer, image?: Buffer | null }[]
    return rows.map((r) => ({ id: r.id, label: r.label, embedding: fromFloat32Blob(r.embedding), image: r.image ?? null }))
  }

  /**
   * Appends examples and stores `fit` (computed on every example: old then new) in one transaction; the
   * version goes up by one. `fromVersion` is the version the fit started from.
   */
  addExamples (id: string, examples: NewExample[], fit: RefitResult, fromVersion: number): StoredClassifier {
    this.db.transaction(() => {
      const current = this.requireVersion(id, fromVersion)
      this.insertExamples(this.seqOf(id), examples, current.keepImages)
      this.saveFit(id, fit, null)
    })()
    return this.require(id)
  }

  /**
   * Replaces every example's embedding (same order as examples()), pins the classifier to `pin` and
   * stores `fit` (computed on the new embeddings); the version goes up by one.
   */
  reembed (id: string, pin: EmbeddingPin, embeddings: ArrayLike<number>[], fit: RefitResult, fromVersion: number): StoredClassifier {
    this.db.transaction(() => {
      this.requireVersion(id, fromVersion)
      const ids = this.examples(id).map((e) => e.id)
      if (ids.length !== embeddings.length) throw new Error(`re-embedding ${embeddings.length} of ${ids.length} examples. This is a bug.`)
      const update = this.db.prepare('UPDATE examples SET embedding = ? WHERE id = ?')
      ids.forEach((exampleId, i) => update.run(toFloat32Blob(embeddings[i]), exampleId))
      this.saveFit(id, fit, pin, embeddings.length > 0 ? embeddings[0].length : undefined)
    })()
    return this.require(id)
  }

  delete (id: string): boolean {
    return this.db.prepare('DELETE FROM classifiers WHERE id = ?').run(id).changes === 1
  }

  /** The classifier (CLASSIFIER_NOT_FOUND if deleted meanwhile), checked to be still at `version`. */
  private requireVersion (id: string, version: number): StoredClassifier {
    const current = this.require(id)
    if (current.version !== version) throw new Error(`classifier ${id} moved from version ${version} to ${current.version} during a refit. This is a bug.`)
    return current
  }

  private seqOf (id: string): number {
    const row = this.db.prepare('SELECT seq FROM classifiers WHERE id = ?').get(id) as { seq: number } | undefined
    if (row === undefined) throw new ApiError('CLASSIFIER_NOT_FOUND', `no classifier has id ${JSON.stringify(id)}`)
    return row.seq
  }

  private insertExamples (seq: number, examples: NewExample[], keepImages: boolean): void {
    const insert = this.db.prepare('INSERT INTO examples (classifier_seq, label, embedding, image) VALUES (?, ?, ?, ?)')
    for (const e of examples) insert.run(seq, e.label, toFloat32Blob(e.embedding), keepImages ? (e.image ?? null) : null)
  }

  private saveFit (id: string, fit: RefitResult, pin: EmbeddingPin | null, dim?: number): void {
    const now = new Date().toISOString()
    this.db.prepare(`UPDATE classifiers SET version = version + 1, probe_json = ?, counts_json = ?, cv_json = ?, updated_at = ?,
        model = COALESCE(?, model), model_sha256 = COALESCE(?, model_sha256), pooling = COALESCE(?, pooling),
        normalize = COALESCE(?, normalize), dim = COALESCE(?, dim) WHERE id = ?`)
      .run(JSON.stringify(fit.probe), countsJson(fit.counts), JSON.stringify(fit.cv), now,
        pin?.model ?? null, pin?.sha256 ?? null, pin?.pooling ?? null, pin === null ? null : (pin.normalize ? 1 : 0), dim ?? null, id)
    if (fit.probe.state.method === 'knn') this.syncKnnIds(id)
  }

  /** kNN probes report neighbours by example id; the ids exist only once the rows are inserted. */
  private syncKnnIds (id: string): void {
    const row = this.db.prepare('SELECT probe_json FROM classifiers WHERE id = ?').get(id) as { probe_json: string }
    const probe = JSON.parse(row.probe_json) as FittedProbe
    if (probe.state.method !== 'knn') return
    const ids = this.examples(id).map((e) => e.id)
    if (ids.length !== probe.state.examples.length) return // imported without examples: keep the exported ids
    probe.state.example_ids = ids
    this.db.prepare('UPDATE classifiers SET probe_json = ? WHERE id = ?').run(JSON.stringify(probe), id)
  }
}

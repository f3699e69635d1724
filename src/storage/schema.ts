/**
 * The classifier store's tables as Kysely sees them (one description for SQLite and PostgreSQL).
 * Booleans are 0/1 integers and times ISO strings in both dialects, so rows read the same everywhere.
 */
import type { Generated } from 'kysely'

export interface ClassifiersTable {
  /** paging order (cursor) */
  seq: Generated<number>
  /** public id, clf_<hex> */
  id: string
  name: string
  method: string
  version: number
  /** pin: model name, encoder sha256, pooling, normalize */
  model: string
  model_sha256: string
  pooling: string
  normalize: number
  keep_images: number
  dim: number
  /** the probe's labels and scalars (probe-codec.ts) */
  probe_meta: string
  /** the probe's arrays, little-endian float32 / int32 (probe-codec.ts) */
  probe_data: Uint8Array
  /** {label: count} */
  counts_json: string
  /** CrossValidationReport */
  cv_json: string
  /** 0 when imported without example embeddings */
  refittable: number
  num_examples: number
  created_at: string
  updated_at: string
}

export interface ExamplesTable {
  id: Generated<number>
  classifier_seq: number
  label: string
  /** float32 little-endian, (D) */
  embedding: Uint8Array
  /** encoded image bytes, only when keep_images */
  image: Uint8Array | null
}

export interface IdempotencyKeysTable {
  /** sha256 of the API key (or "-") and the route */
  scope: string
  key: string
  /** sha256 of the request (params and body) */
  request_hash: string
  /** null while the first request runs */
  status: number | null
  body: string | null
  /** Date.now() when the key was first seen */
  created_ms: number
}

export interface SchemaMigrationsTable {
  version: number
  name: string
  applied_at: string
}

export interface StoreSchema {
  classifiers: ClassifiersTable
  examples: ExamplesTable
  idempotency_keys: IdempotencyKeysTable
  schema_migrations: SchemaMigrationsTable
}

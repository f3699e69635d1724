/**
 * Migration 2: probes as binary float32 (probe_meta + probe_data, see ../probe-codec.ts) instead of
 * JSON, a stored example count (reading a classifier is one indexed row), and the Idempotency-Key
 * records. Existing probes are converted row by row, so a store written by f471e1f predicts the same.
 */
import { sql, type Kysely } from 'kysely'
import type { FittedProbe } from '../../fewshot/classifiers.js'
import { encodeProbe } from '../probe-codec.js'
import type { StoreDialect } from './index.js'

export const name = 'binary probes, example counts, idempotency keys'

export async function up (db: Kysely<any>, dialect: StoreDialect): Promise<void> {
  const blob = dialect === 'sqlite' ? 'BLOB' : 'BYTEA'
  const bigint = dialect === 'sqlite' ? 'INTEGER' : 'BIGINT'
  await sql.raw('ALTER TABLE classifiers ADD COLUMN probe_meta TEXT').execute(db)
  await sql.raw(`ALTER TABLE classifiers ADD COLUMN probe_data ${blob}`).execute(db)
  await sql.raw('ALTER TABLE classifiers ADD COLUMN num_examples INTEGER NOT NULL DEFAULT 0').execute(db)
  const rows = await db.selectFrom('classifiers').select(['seq', 'probe_json']).execute() as { seq: number, probe_json: string }[]
  for (const row of rows) {
    const encoded = encodeProbe(JSON.parse(row.probe_json) as FittedProbe)
    await db.updateTable('classifiers').set({
      probe_meta: encoded.meta,
      probe_data: encoded.data,
      num_examples: sql`(SELECT COUNT(*) FROM examples WHERE examples.classifier_seq = ${row.seq})`
    }).where('seq', '=', row.seq).execute()
  }
  await sql.raw('ALTER TABLE classifiers DROP COLUMN probe_json').execute(db)
  await sql.raw(`CREATE TABLE idempotency_keys (
     scope TEXT NOT NULL,
     key TEXT NOT NULL,
     request_hash TEXT NOT NULL,
     status INTEGER,
     body TEXT,
     created_ms ${bigint} NOT NULL,
     PRIMARY KEY (scope, key)
   )`).execute(db)
  await sql.raw('CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_ms)').execute(db)
}

/**
 * Migration 1: classifiers and their examples, as main at f471e1f created them (user_version 1 there;
 * such a file is adopted in place: see index.ts). Never edit a published migration; append a new one.
 */
import { sql, type Kysely } from 'kysely'
import type { StoreDialect } from './index.js'

export const name = 'classifiers and examples'

export async function up (db: Kysely<any>, dialect: StoreDialect): Promise<void> {
  const serial = dialect === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'SERIAL PRIMARY KEY'
  const blob = dialect === 'sqlite' ? 'BLOB' : 'BYTEA'
  await sql.raw(`CREATE TABLE classifiers (
     seq ${serial},
     id TEXT NOT NULL UNIQUE,
     name TEXT NOT NULL,
     method TEXT NOT NULL,
     version INTEGER NOT NULL,
     model TEXT NOT NULL,
     model_sha256 TEXT NOT NULL,
     pooling TEXT NOT NULL,
     normalize INTEGER NOT NULL,
     keep_images INTEGER NOT NULL,
     dim INTEGER NOT NULL,
     probe_json TEXT NOT NULL,
     counts_json TEXT NOT NULL,
     cv_json TEXT NOT NULL,
     refittable INTEGER NOT NULL,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   )`).execute(db)
  await sql.raw(`CREATE TABLE examples (
     id ${serial},
     classifier_seq INTEGER NOT NULL REFERENCES classifiers(seq) ON DELETE CASCADE,
     label TEXT NOT NULL,
     embedding ${blob} NOT NULL,
     image ${blob}
   )`).execute(db)
  await sql.raw('CREATE INDEX examples_by_classifier ON examples(classifier_seq, id)').execute(db)
}

/**
 * The service's SQLite database (better-sqlite3 12): opened in WAL mode with synchronous=FULL and
 * brought to the latest schema by numbered migrations (PRAGMA user_version).
 *
 * Why synchronous=FULL: in WAL mode, NORMAL may lose the last transactions on power loss or an OS
 * crash; FULL fsyncs the WAL on every commit, so a write the service has acknowledged survives a
 * killed process (test/storage/classifier-store.test.ts kills one with SIGKILL) and a crashed machine.
 * The cost is one fsync per write request, which is small next to an embedding call.
 */
import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import Database from 'better-sqlite3'

export type SqliteDatabase = Database.Database

/** Migration i (0-based) brings user_version from i to i + 1. Never edit a published entry; append. */
const MIGRATIONS: readonly string[] = [
  // 1: classifiers and their examples
  `CREATE TABLE classifiers (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- paging order (cursor)
     id TEXT NOT NULL UNIQUE,                 -- public id, clf_<hex>
     name TEXT NOT NULL,
     method TEXT NOT NULL,
     version INTEGER NOT NULL,
     model TEXT NOT NULL,                     -- pin: model name, encoder sha256, pooling, normalize
     model_sha256 TEXT NOT NULL,
     pooling TEXT NOT NULL,
     normalize INTEGER NOT NULL,
     keep_images INTEGER NOT NULL,
     dim INTEGER NOT NULL,
     probe_json TEXT NOT NULL,                -- FittedProbe (src/fewshot/classifiers.ts)
     counts_json TEXT NOT NULL,               -- {label: count}
     cv_json TEXT NOT NULL,                   -- CrossValidationReport
     refittable INTEGER NOT NULL,             -- 0 when imported without example embeddings
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE examples (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     classifier_seq INTEGER NOT NULL REFERENCES classifiers(seq) ON DELETE CASCADE,
     label TEXT NOT NULL,
     embedding BLOB NOT NULL,                 -- float32 little-endian, (D)
     image BLOB                               -- encoded image bytes, only when keep_images
   );
   CREATE INDEX examples_by_classifier ON examples(classifier_seq, id);`
]

export const SCHEMA_VERSION = MIGRATIONS.length

/** Applies the missing migrations, each in its own transaction. Refuses a database from a newer build. */
export function migrate (db: SqliteDatabase): void {
  const current = db.pragma('user_version', { simple: true }) as number
  if (current > SCHEMA_VERSION) {
    throw new Error(`database schema version ${current} is newer than this build's ${SCHEMA_VERSION}; upgrade the service or use another CLMAE_DB_PATH`)
  }
  for (let v = current; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v])
      db.pragma(`user_version = ${v + 1}`)
    })()
  }
}

/** Opens (creating the file and its directory) the database at `path`; ':memory:' for tests. */
export function openDatabase (path: string): SqliteDatabase {
  if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true })
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.pragma('foreign_keys = ON')
  db.pragma('busy_timeout = 5000')
  migrate(db)
  return db
}

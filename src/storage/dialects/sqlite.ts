/**
 * The embedded store: one SQLite file (better-sqlite3) for one service process.
 *
 * WAL mode with synchronous=FULL: NORMAL may lose the last transactions on power loss or an OS crash;
 * FULL fsyncs the WAL on every commit, so an acknowledged write survives a killed process and a crashed
 * machine (one fsync per write request, small next to an embedding call).
 *
 * locking_mode=EXCLUSIVE: the process takes SQLite's own file lock at open and holds it until it closes
 * or dies, so a second process on the same file is refused at start-up with a message saying so (two
 * processes sharing one file used to lose writes to busy errors). The OS drops the lock with the process,
 * so a SIGKILLed service leaves no stale lock behind. Many replicas: use PostgreSQL (--database-url).
 */
import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import type { StoreSchema } from '../schema.js'

export type SqliteDatabase = Database.Database

export class StoreOpenError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreOpenError'
  }
}

/** Opens (creating the file and its directory) the SQLite file at `path` and takes its exclusive lock. ':memory:' for tests. */
export function openSqliteFile (path: string, options: { busyTimeoutMs?: number } = {}): SqliteDatabase {
  const where = path === ':memory:' ? 'an in-memory SQLite database' : `the SQLite file ${resolve(path)} (--db-path / CLMAE_DB_PATH)`
  let db: SqliteDatabase
  try {
    if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true })
    db = new Database(path)
  } catch (error) {
    throw new StoreOpenError(`cannot open ${where}: ${(error as Error).message}`, { cause: error })
  }
  try {
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 1000}`)
    db.pragma('locking_mode = EXCLUSIVE')
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.pragma('foreign_keys = ON')
    db.exec('BEGIN EXCLUSIVE; COMMIT') // take the lock now, not at the first write
  } catch (error) {
    db.close()
    if ((error as { code?: string }).code === 'SQLITE_BUSY') {
      throw new StoreOpenError(`${where} is in use by another live process (SQLite allows one service process per file); stop it, use another --db-path, or run many replicas on PostgreSQL (--database-url)`, { cause: error })
    }
    throw new StoreOpenError(`cannot open ${where}: ${(error as Error).message}`, { cause: error })
  }
  return db
}

export function sqliteKysely (db: SqliteDatabase): Kysely<StoreSchema> {
  return new Kysely<StoreSchema>({ dialect: new SqliteDialect({ database: db }) })
}

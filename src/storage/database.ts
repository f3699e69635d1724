/**
 * Opens the classifier store's database and brings it to the latest schema: PostgreSQL when a
 * database URL is set (many replicas share it), else the SQLite file at dbPath (one process).
 * Both are reached through one Kysely query layer (classifier-store.ts); the dialect files hold what
 * differs (connection, locking).
 */
import type { Kysely } from 'kysely'
import type { StoreSchema } from './schema.js'
import { migrate, SCHEMA_VERSION, type StoreDialect } from './migrations/index.js'
import { openSqliteFile, sqliteKysely, StoreOpenError, type SqliteDatabase } from './dialects/sqlite.js'
import { describePostgresUrl, openPostgres } from './dialects/postgres.js'

export { SCHEMA_VERSION, StoreOpenError, type StoreDialect }

export interface StoreDatabase {
  db: Kysely<StoreSchema>
  dialect: StoreDialect
  /** what it is, for messages: the SQLite path or PostgreSQL host/database (never the password) */
  description: string
  /** the better-sqlite3 handle (SQLite only): tests and pragmas */
  sqlite?: SqliteDatabase
  /** the schema version found before migrating (0 = new store) */
  migratedFrom: number
  close: () => Promise<void>
}

export interface StoreLocation {
  /** postgres:// URL; empty = SQLite at dbPath */
  databaseUrl?: string
  dbPath: string
  poolSize?: number
}

export async function openStoreDatabase (location: StoreLocation): Promise<StoreDatabase> {
  if (location.databaseUrl !== undefined && location.databaseUrl !== '') {
    const description = describePostgresUrl(location.databaseUrl)
    const { kysely } = await openPostgres(location.databaseUrl, { poolSize: location.poolSize ?? 16 })
    const migratedFrom = await migrateOrClose(kysely, 'postgres', description)
    return { db: kysely, dialect: 'postgres', description, migratedFrom, close: async () => { await kysely.destroy() } }
  }
  const sqlite = openSqliteFile(location.dbPath)
  const kysely = sqliteKysely(sqlite)
  const description = location.dbPath === ':memory:' ? 'SQLite in memory' : `SQLite file ${location.dbPath}`
  const migratedFrom = await migrateOrClose(kysely, 'sqlite', description)
  return { db: kysely, dialect: 'sqlite', description, sqlite, migratedFrom, close: async () => { await kysely.destroy() } }
}

async function migrateOrClose (db: Kysely<StoreSchema>, dialect: StoreDialect, description: string): Promise<number> {
  try {
    return await migrate(db, dialect)
  } catch (error) {
    await db.destroy().catch(() => {})
    throw new StoreOpenError(`cannot migrate the classifier store (${description}): ${(error as Error).message}`, { cause: error })
  }
}

/**
 * Numbered migrations, applied at start-up, each in its own transaction, recorded in schema_migrations.
 *
 * Adopting an older SQLite file in place: main at f471e1f kept no schema_migrations table but set
 * PRAGMA user_version = 1 after creating exactly migration 1's tables; such a file is recorded as at
 * version 1 and migrated from there. On SQLite, user_version is kept equal to the latest version, so
 * the f471e1f build refuses an upgraded file ("newer than this build") instead of misreading it.
 * On PostgreSQL an advisory lock makes replicas starting together migrate one after another.
 */
import { sql, type Kysely } from 'kysely'
import type { StoreSchema } from '../schema.js'
import * as m001 from './001-classifiers.js'
import * as m002 from './002-binary-probes.js'

export type StoreDialect = 'sqlite' | 'postgres'

interface Migration { name: string, up: (db: Kysely<any>, dialect: StoreDialect) => Promise<void> }

/** Migration i (0-based) brings the schema from version i to i + 1. Append only. */
const MIGRATIONS: readonly Migration[] = [m001, m002]

export const SCHEMA_VERSION = MIGRATIONS.length

/** Any constant: the key of the advisory lock that serialises migrations across replicas. */
const MIGRATION_LOCK_KEY = 7_020_331

async function tableExists (db: Kysely<any>, dialect: StoreDialect, table: string): Promise<boolean> {
  const found = dialect === 'sqlite'
    ? await sql<{ n: number }>`SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ${table}`.execute(db)
    : await sql<{ n: number }>`SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ${table}`.execute(db)
  return Number(found.rows[0].n) > 0
}

async function currentVersion (db: Kysely<any>, dialect: StoreDialect): Promise<number> {
  if (!(await tableExists(db, dialect, 'schema_migrations'))) {
    await sql.raw('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)').execute(db)
    if (dialect === 'sqlite') {
      const legacy = Number((await sql<{ user_version: number }>`PRAGMA user_version`.execute(db)).rows[0].user_version)
      if (legacy > 1) throw new Error(`database schema version ${legacy} is newer than this build's ${SCHEMA_VERSION}; upgrade the service or use another store`)
      if (legacy === 1) { // written by f471e1f: its tables are migration 1
        await db.insertInto('schema_migrations').values({ version: 1, name: `${MIGRATIONS[0].name} (adopted: user_version 1)`, applied_at: new Date().toISOString() }).execute()
      }
    }
  }
  const row = await db.selectFrom('schema_migrations').select(sql<number>`MAX(version)`.as('v')).executeTakeFirst()
  return Number(row?.v ?? 0)
}

async function migrateOn (db: Kysely<StoreSchema>, dialect: StoreDialect): Promise<number> {
  const from = await currentVersion(db, dialect)
  if (from > SCHEMA_VERSION) throw new Error(`database schema version ${from} is newer than this build's ${SCHEMA_VERSION}; upgrade the service or use another store`)
  for (let v = from; v < SCHEMA_VERSION; v++) {
    await db.transaction().execute(async (trx) => {
      await MIGRATIONS[v].up(trx, dialect)
      await trx.insertInto('schema_migrations').values({ version: v + 1, name: MIGRATIONS[v].name, applied_at: new Date().toISOString() }).execute()
    })
  }
  if (dialect === 'sqlite') await sql.raw(`PRAGMA user_version = ${SCHEMA_VERSION}`).execute(db)
  return from
}

/** Brings the store to SCHEMA_VERSION; returns the version it found. Refuses a store from a newer build. */
export async function migrate (db: Kysely<StoreSchema>, dialect: StoreDialect): Promise<number> {
  if (dialect === 'sqlite') return await migrateOn(db, dialect)
  return await db.connection().execute(async (conn) => {
    await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`.execute(conn)
    try {
      return await migrateOn(conn, dialect)
    } finally {
      await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.execute(conn)
    }
  })
}

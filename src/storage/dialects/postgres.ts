/**
 * The shared store: PostgreSQL (node-postgres pool) for many service replicas. The URL is a secret
 * (it may carry a password): it is never logged; messages name the host and database only.
 */
import pg from 'pg'
import { Kysely, PostgresDialect } from 'kysely'
import type { StoreSchema } from '../schema.js'
import { StoreOpenError } from './sqlite.js'

// int8 (COUNT(*), bigint columns) as a JS number: our counts and millisecond times stay below 2^53
pg.types.setTypeParser(20, (value: string) => Number(value))

/** host:port/database of a postgres:// URL, without user or password, for messages. */
export function describePostgresUrl (url: string): string {
  try {
    const u = new URL(url)
    return `PostgreSQL at ${u.hostname}:${u.port === '' ? '5432' : u.port}${u.pathname}`
  } catch {
    return 'PostgreSQL (unparsable --database-url)'
  }
}

export async function openPostgres (url: string, options: { poolSize: number, connectTimeoutMs?: number }): Promise<{ kysely: Kysely<StoreSchema>, pool: pg.Pool }> {
  const where = describePostgresUrl(url)
  if (!/^postgres(ql)?:\/\//.test(url)) throw new StoreOpenError(`--database-url / CLMAE_DATABASE_URL must be a postgres:// URL (${where})`)
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize, connectionTimeoutMillis: options.connectTimeoutMs ?? 5000 })
  // a client losing its connection (idle in the pool, or during a query: the server restarted, an admin
  // terminated it) must not crash the process with an unhandled 'error' event; its query rejects, and
  // the store service turns that into 503 DATABASE_UNAVAILABLE
  pool.on('error', () => {})
  pool.on('connect', (client) => { client.on('error', () => {}) })
  try {
    const client = await pool.connect()
    client.release()
  } catch (error) {
    await pool.end().catch(() => {})
    throw new StoreOpenError(`cannot reach ${where}: ${(error as Error).message}`, { cause: error })
  }
  return { kysely: new Kysely<StoreSchema>({ dialect: new PostgresDialect({ pool }) }), pool }
}

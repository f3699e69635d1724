/**
 * Which store the classifier suites run against: SQLite (default) or, when CLMAE_TEST_DATABASE_URL is
 * set (scripts/test-all.sh starts a throw-away PostgreSQL and sets it), a fresh PostgreSQL database
 * per server or store, created from that URL and dropped afterwards.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export const TEST_DATABASE_URL = process.env.CLMAE_TEST_DATABASE_URL ?? ''
export const TEST_DIALECT = TEST_DATABASE_URL === '' ? 'sqlite' : 'postgres'

async function admin<T> (task: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL })
  await client.connect()
  try {
    return await task(client)
  } finally {
    await client.end()
  }
}

/** A new empty PostgreSQL database; its URL. Dropped after the test when a context is given. */
export async function freshPostgresUrl (t?: { after: (fn: () => Promise<void> | void) => void }): Promise<string> {
  if (TEST_DATABASE_URL === '') throw new Error('CLMAE_TEST_DATABASE_URL is not set')
  const name = `clmae_t_${randomBytes(6).toString('hex')}`
  await admin(async (c) => { await c.query(`CREATE DATABASE ${name}`) })
  t?.after(async () => { await admin(async (c) => { await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) }) })
  const url = new URL(TEST_DATABASE_URL)
  url.pathname = `/${name}`
  return url.toString()
}

/** Config overrides that put a test server's store on the suite's dialect (nothing for SQLite). */
export async function testStoreOverrides (t?: { after: (fn: () => Promise<void> | void) => void }): Promise<{ databaseUrl?: string }> {
  return TEST_DATABASE_URL === '' ? {} : { databaseUrl: await freshPostgresUrl(t) }
}

/**
 * Idempotency-Key records (create and add-examples): a retried request with the same key gets the
 * stored answer instead of doing the work twice, on any replica (the records live in the store).
 *
 * A key is scoped by the API key that sent it and the route, and kept 24 hours. The first request
 * claims the key (a row with no answer yet); its answer is written in the same transaction as the
 * classifier it created or changed, so a replica killed in between leaves either both or neither. A
 * request that fails releases the key (the retry does the work). Same key, other request: 422
 * IDEMPOTENCY_KEY_REUSED; same key while the first still runs: 409 IDEMPOTENCY_KEY_IN_PROGRESS; a claim
 * older than `staleMs` with no answer (its replica died) is taken over.
 */
import { createHash } from 'node:crypto'
import type { Kysely } from 'kysely'
import { ApiError } from '../errors.js'
import type { StoreSchema } from './schema.js'

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000

export interface IdempotencyClaim {
  scope: string
  key: string
  hash: string
}

export type ClaimOutcome = { kind: 'new' } | { kind: 'replay', status: number, body: unknown }

export function sha256 (data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Scope of a key: who sent it (sha256 of the API key, never the key) and where. */
export function idempotencyScope (apiKey: string | undefined, route: string): string {
  return `${apiKey === undefined ? '-' : sha256(apiKey).slice(0, 32)} ${route}`
}

export async function claimKey (db: Kysely<StoreSchema>, claim: IdempotencyClaim, options: { staleMs: number, now?: number }): Promise<ClaimOutcome> {
  const now = options.now ?? Date.now()
  const mine = db.deleteFrom('idempotency_keys').where('scope', '=', claim.scope).where('key', '=', claim.key)
  await mine.where('created_ms', '<', now - IDEMPOTENCY_TTL_MS).execute()
  const inserted = await db.insertInto('idempotency_keys').values({ scope: claim.scope, key: claim.key, request_hash: claim.hash, status: null, body: null, created_ms: now })
    .onConflict((oc) => oc.columns(['scope', 'key']).doNothing()).executeTakeFirst()
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1) return { kind: 'new' }
  const row = await db.selectFrom('idempotency_keys').selectAll().where('scope', '=', claim.scope).where('key', '=', claim.key).executeTakeFirst()
  if (row === undefined) return await claimKey(db, claim, options) // released meanwhile: claim again
  if (row.request_hash !== claim.hash) {
    throw new ApiError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was sent before with another request; use a new key for a new request')
  }
  if (row.status !== null && row.body !== null) return { kind: 'replay', status: row.status, body: JSON.parse(row.body) as unknown }
  if (Number(row.created_ms) < now - options.staleMs) { // the replica that claimed it died: take over
    const taken = await db.updateTable('idempotency_keys').set({ created_ms: now }).where('scope', '=', claim.scope).where('key', '=', claim.key)
      .where('created_ms', '=', row.created_ms).where('status', 'is', null).executeTakeFirst()
    if (Number(taken.numUpdatedRows) === 1) return { kind: 'new' }
  }
  throw new ApiError('IDEMPOTENCY_KEY_IN_PROGRESS', 'a request with this Idempotency-Key is still running; retry after it has answered', { headers: { 'retry-after': '1' } })
}

/** Records the answer (inside the write's transaction). */
export async function completeKey (db: Kysely<StoreSchema>, claim: IdempotencyClaim, status: number, body: unknown): Promise<void> {
  await db.updateTable('idempotency_keys').set({ status, body: JSON.stringify(body) }).where('scope', '=', claim.scope).where('key', '=', claim.key).execute()
}

/** Frees a claim whose request failed, so that a retry does the work. */
export async function releaseKey (db: Kysely<StoreSchema>, claim: IdempotencyClaim): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('scope', '=', claim.scope).where('key', '=', claim.key).where('status', 'is', null).execute()
}

export async function purgeExpiredKeys (db: Kysely<StoreSchema>, now = Date.now()): Promise<number> {
  const result = await db.deleteFrom('idempotency_keys').where('created_ms', '<', now - IDEMPOTENCY_TTL_MS).executeTakeFirst()
  return Number(result.numDeletedRows)
}

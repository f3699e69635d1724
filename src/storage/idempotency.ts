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
 *
 * A claim is owned by the time it was made (created_ms, set anew on a takeover): completing or
 * releasing a claim that was taken over does nothing to the new owner's. A request whose claim was taken
 * over (it was not dead, only slower than `staleMs`) cannot record its answer, so its write rolls back
 * and it answers 409 IDEMPOTENCY_KEY_IN_PROGRESS: one key, one classifier.
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

/** `new`: this request owns the key; `claimedMs` identifies its claim (completeKey / releaseKey take it). */
export type ClaimOutcome = { kind: 'new', claimedMs: number } | { kind: 'replay', status: number, body: unknown }

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
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1) return { kind: 'new', claimedMs: now }
  const row = await db.selectFrom('idempotency_keys').selectAll().where('scope', '=', claim.scope).where('key', '=', claim.key).executeTakeFirst()
  if (row === undefined) return await claimKey(db, claim, options) // released meanwhile: claim again
  if (row.request_hash !== claim.hash) {
    throw new ApiError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was sent before with another request; use a new key for a new request')
  }
  if (row.status !== null && row.body !== null) return { kind: 'replay', status: row.status, body: JSON.parse(row.body) as unknown }
  if (Number(row.created_ms) < now - options.staleMs) { // the replica that claimed it died: take over
    const taken = await db.updateTable('idempotency_keys').set({ created_ms: now }).where('scope', '=', claim.scope).where('key', '=', claim.key)
      .where('created_ms', '=', row.created_ms).where('status', 'is', null).executeTakeFirst()
    if (Number(taken.numUpdatedRows) === 1) return { kind: 'new', claimedMs: now }
  }
  throw new ApiError('IDEMPOTENCY_KEY_IN_PROGRESS', 'a request with this Idempotency-Key is still running; retry after it has answered', { headers: { 'retry-after': '1' } })
}

/**
 * Records the answer (inside the write's transaction), if the claim made at `claimedMs` is still this
 * request's; else throws IDEMPOTENCY_KEY_IN_PROGRESS, which rolls the write back.
 */
export async function completeKey (db: Kysely<StoreSchema>, claim: IdempotencyClaim, claimedMs: number, status: number, body: unknown): Promise<void> {
  const done = await db.updateTable('idempotency_keys').set({ status, body: JSON.stringify(body) }).where('scope', '=', claim.scope).where('key', '=', claim.key)
    .where('created_ms', '=', claimedMs).where('status', 'is', null).executeTakeFirst()
  if (Number(done.numUpdatedRows) !== 1) {
    throw new ApiError('IDEMPOTENCY_KEY_IN_PROGRESS', 'this request ran so long that a retry with its Idempotency-Key took the key over; nothing was stored by this one, retry to get the answer', { headers: { 'retry-after': '1' } })
  }
}

/** Frees the claim made at `claimedMs` when its request failed, so that a retry does the work (a newer owner's claim stays). */
export async function releaseKey (db: Kysely<StoreSchema>, claim: IdempotencyClaim, claimedMs: number): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('scope', '=', claim.scope).where('key', '=', claim.key).where('created_ms', '=', claimedMs).where('status', 'is', null).execute()
}

export async function purgeExpiredKeys (db: Kysely<StoreSchema>, now = Date.now()): Promise<number> {
  const result = await db.deleteFrom('idempotency_keys').where('created_ms', '<', now - IDEMPOTENCY_TTL_MS).executeTakeFirst()
  return Number(result.numDeletedRows)
}

/**
 * Per-item failures of a multi-image request: every item is tried, and when any fails the request
 * fails with the first failure's code and status and an `errors: [{index, code, detail}]` list naming
 * each failed item by its position in the request, so a client can fix or drop exactly those.
 * Failures that are not ApiErrors (bugs) are not collected: they propagate as they are.
 */
import { ApiError, type ItemError } from './errors.js'

/**
 * Wraps item failures (index = position in the request) into one ApiError; null when there are none.
 * `headers` are the first failure's (e.g. Retry-After of a 503).
 */
export function itemFailure (failures: ItemError[], total: number, headers?: Record<string, string>): ApiError | null {
  if (failures.length === 0) return null
  const first = failures[0]
  const detail = total === 1 ? first.detail : `${failures.length} of ${total} images failed; first: input[${first.index}]: ${first.detail}`
  return new ApiError(first.code, detail, { errors: failures, headers })
}

/** Maps every item; ApiErrors become per-item errors (index offset by `base`), other errors are rethrown. */
export function mapItems<T, R> (items: readonly T[], fn: (item: T, index: number) => R, base = 0): R[] {
  const out: R[] = []
  const failures: ItemError[] = []
  let headers: Record<string, string> | undefined
  items.forEach((item, i) => {
    try {
      out.push(fn(item, i))
    } catch (error) {
      if (!(error instanceof ApiError)) throw error
      headers ??= error.headers
      failures.push(...itemErrorsOf(error, base + i))
    }
  })
  const failure = itemFailure(failures, items.length, headers)
  if (failure !== null) throw failure
  return out
}

/** Async version of mapItems: every item runs (concurrently), then failures are reported together. */
export async function mapItemsAsync<T, R> (items: readonly T[], fn: (item: T, index: number) => Promise<R>, base = 0): Promise<R[]> {
  const settled = await Promise.allSettled(items.map(fn))
  const failures: ItemError[] = []
  const out: R[] = []
  let headers: Record<string, string> | undefined
  settled.forEach((s, i) => {
    if (s.status === 'fulfilled') { out.push(s.value); return }
    if (!(s.reason instanceof ApiError)) throw s.reason
    headers ??= s.reason.headers
    failures.push(...itemErrorsOf(s.reason, base + i))
  })
  const failure = itemFailure(failures, items.length, headers)
  if (failure !== null) throw failure
  return out
}

/** An ApiError as per-item errors at `index` (an error that already lists items keeps them, shifted). */
export function itemErrorsOf (error: ApiError, index: number): ItemError[] {
  if (error.errors !== undefined) return error.errors.map((e) => ({ ...e, index: e.index + index }))
  return [{ index, code: error.code, detail: error.message }]
}

/** Re-bases the item indexes of an ApiError (e.g. the errors of one chunk of a larger request). */
export function shiftItemErrors (error: unknown, offset: number, total: number): unknown {
  if (!(error instanceof ApiError) || error.errors === undefined || offset === 0) return error
  return itemFailure(error.errors.map((e) => ({ ...e, index: e.index + offset })), total, error.headers) ?? error
}

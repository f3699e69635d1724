/**
 * Why a bundle directory was refused at load time. These are start-up failures (logged, and fatal for the
 * default model), not HTTP answers, so they live outside the HTTP registry in src/errors.ts.
 */
export type BundleErrorCode =
  | 'BUNDLE_MANIFEST_MISSING'
  | 'BUNDLE_MANIFEST_INVALID'
  | 'BUNDLE_GRAPH_MISSING'
  | 'BUNDLE_SIZE_MISMATCH'
  | 'BUNDLE_SHA256_MISMATCH'
  | 'BUNDLE_SESSION_FAILED'

export class BundleError extends Error {
  constructor (readonly code: BundleErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options)
    this.name = 'BundleError'
  }
}

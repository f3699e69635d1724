/**
 * The entry URL of a worker-thread module next to the caller. Compiled (dist/*.js) it is a plain file
 * URL; run from source under tsx, a worker does not inherit tsx's loader on Node 20, so a one-line
 * bootstrap registers it first. Used by the few-shot fit worker and the resample pool.
 */
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'

export function workerEntry (callerUrl: string, name: string): URL {
  const caller = fileURLToPath(callerUrl)
  const entry = new URL(`./${name}${extname(caller)}`, callerUrl)
  if (extname(caller) !== '.ts') return entry
  const tsx = import.meta.resolve('tsx/esm/api')
  const boot = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry.href)})`
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`)
}

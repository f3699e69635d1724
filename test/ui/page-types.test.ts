// The page ships as plain ES modules (no build step), so nothing compiles it: this runs TypeScript
// over its JSDoc types (test/ui/tsconfig.page.json, checkJs, strict) to catch what a compiler would.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

test('the page\'s modules type-check (checkJs, strict, DOM)', { timeout: 300_000 }, () => {
  const tsc = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url))
  const project = fileURLToPath(new URL('./tsconfig.page.json', import.meta.url))
  const run = spawnSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8' })
  assert.equal(run.status, 0, `tsc -p test/ui/tsconfig.page.json:\n${run.stdout}${run.stderr}`)
})

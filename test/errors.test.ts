/**
 * The error registry (src/errors.ts) against its documentation (style rule 7): codes are AREA_WHAT and
 * unique, statuses are 4xx/5xx, the README error table is current (npm run docs:readme), and every code
 * appears in the documented responses of at least one route of the OpenAPI document.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { ApiError, ERRORS, isErrorCode, toProblem, type ErrorCode } from '../src/errors.js'
import { renderErrorTable } from '../src/cli/write-readme-tables.js'

const codes = Object.keys(ERRORS) as ErrorCode[]
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const openapi = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8')) as { paths: Record<string, unknown> }

/** codes that no route answers by design: unknown routes get REQUEST_NOT_FOUND from the not-found handler */
const NOT_ROUTE_CODES = new Set<ErrorCode>(['REQUEST_NOT_FOUND'])

test('every code is AREA_WHAT, maps to itself and to a 4xx or 5xx status with a title', () => {
  assert.ok(codes.length >= 25, `only ${codes.length} codes`)
  for (const code of codes) {
    assert.match(code, /^[A-Z]+(_[A-Z0-9]+)+$/)
    assert.ok(isErrorCode(code))
    const error = new ApiError(code, 'detail')
    assert.equal(error.code, code)
    assert.ok(error.status >= 400 && error.status < 600, `${code}: ${error.status}`)
    assert.ok(ERRORS[code].title.length > 5)
    const type = error.status === 401 ? 'authentication_error' : error.status >= 500 ? 'server_error' : 'invalid_request_error'
    assert.deepEqual(toProblem(error), {
      type: `https://clmae-serve.local/errors/${code}`, title: ERRORS[code].title, status: error.status, detail: 'detail', code,
      error: { message: 'detail', type, code, param: null }
    })
  }
  assert.ok(!isErrorCode('NOT_A_CODE'))
})

test('per-item errors and the option at fault reach the problem body', () => {
  const problem = toProblem(new ApiError('IMAGE_UNREADABLE', 'two failed', { param: 'input', errors: [{ index: 1, code: 'IMAGE_UNREADABLE', detail: 'x' }, { index: 3, code: 'IMAGE_TOO_SMALL', detail: 'y' }] }))
  assert.deepEqual(problem.errors?.map((e) => e.index), [1, 3])
  assert.equal(problem.error.param, 'input')
  assert.equal(problem.error.code, 'IMAGE_UNREADABLE')
})

test('the README error table lists every code, once, and is current (npm run docs:readme)', () => {
  assert.ok(readme.includes(renderErrorTable()), 'README error table is stale: run npm run docs:readme')
  const rows = readme.split('\n').filter((l) => /^\| `[A-Z_0-9]+` \| \d{3} \|/.test(l))
  assert.equal(rows.length, codes.length, 'README error table row count')
  for (const code of codes) assert.equal(rows.filter((r) => r.startsWith(`| \`${code}\` |`)).length, 1, `${code} in README`)
})

test('every code appears in the documented responses of at least one route', () => {
  const documented = JSON.stringify(openapi.paths)
  const missing = codes.filter((c) => !NOT_ROUTE_CODES.has(c) && !documented.includes(c))
  assert.deepEqual(missing, [], 'codes no route documents (use errorResponses([...]) in the route schema, then npm run openapi)')
})

/** The checks every error answer must pass: problem+json, the expected HTTP status and stable code. */
import assert from 'node:assert/strict'

export interface ProblemBody { type: string, title: string, status: number, detail: string, code: string }

/** Asserts the problem's media type, HTTP status and code; returns the body for further checks. */
export async function expectProblem (response: Response, status: number, code: string): Promise<ProblemBody> {
  const body = await response.json() as ProblemBody
  assert.equal(response.status, status, JSON.stringify(body))
  assert.equal(response.headers.get('content-type')?.split(';')[0], 'application/problem+json')
  assert.equal(body.code, code, body.detail)
  return body
}

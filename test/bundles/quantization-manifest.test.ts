/**
 * The service's side of the manifest's `quantization` object: GET /v1/models reports
 * quantization.source.sha256.encoder as source_encoder_sha256 (a required string in its response schema), so a
 * manifest without it must be refused at load, not answer 500 on /v1/models for every model. Checked on the
 * shipped int8 bundle's manifest with the service's own validator (no server, no Python).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { manifestErrors } from '../../src/bundles/manifest.js'
import { DEFAULT_MODEL, MODELS_DIR } from '../helpers/server.js'

const shipped = (): any => JSON.parse(readFileSync(join(MODELS_DIR, `${DEFAULT_MODEL}-int8`, 'manifest.json'), 'utf8'))

test('the shipped int8 manifest is valid', () => {
  assert.deepEqual(manifestErrors(shipped()), [])
})

test('a quantization without the source encoder sha256, or with graph names that are not graphs, is refused', () => {
  const edits: Array<(q: any) => void> = [
    (q) => { delete q.source.sha256.encoder },
    (q) => { q.source.sha256 = JSON.parse(`{"encoder": "${'0'.repeat(64)}", "__proto__": "${'0'.repeat(64)}"}`) },
    (q) => { q.graphs = JSON.parse('{"encoder": {}, "__proto__": {}}') }
  ]
  for (const edit of edits) {
    const manifest = shipped()
    edit(manifest.quantization)
    assert.notDeepEqual(manifestErrors(manifest), [], JSON.stringify(manifest.quantization))
  }
})

/**
 * Bundle verification on the shipped bundles (models/) and on broken copies of one: a changed graph byte,
 * a missing file, an invalid manifest. Each refusal names the file.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readBundle, sha256File } from '../../src/bundles/bundle-reader.js'
import { BundleError } from '../../src/bundles/bundle-error.js'
import { manifestErrors } from '../../src/bundles/manifest.js'
import { BASELINE_MODEL, DEFAULT_MODEL, MODELS_DIR } from '../helpers/server.js'

function copyBundle (name: string): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'clmae-bundle-')), name)
  cpSync(join(MODELS_DIR, name), dir, { recursive: true })
  return dir
}

test('the shipped bundles verify; clmae has keep_scores, mae has not', async () => {
  const clmae = await readBundle(join(MODELS_DIR, DEFAULT_MODEL))
  assert.equal(clmae.manifest.method, 'clmae')
  assert.deepEqual(Object.keys(clmae.graphPaths).sort(), ['decoder', 'encoder', 'keep_scores'])
  assert.equal(await sha256File(clmae.graphPaths.encoder!), clmae.manifest.graphs.encoder.sha256)
  const mae = await readBundle(join(MODELS_DIR, BASELINE_MODEL))
  assert.equal(mae.manifest.method, 'mae')
  assert.equal(mae.graphPaths.keep_scores, undefined)
})

test('the committed manifest example is valid against the schema', () => {
  const example = JSON.parse(readFileSync(new URL('../../training/bundle-format/manifest.example.json', import.meta.url), 'utf8'))
  assert.deepEqual(manifestErrors(example), [])
})

test('one changed byte in a graph refuses the bundle with BUNDLE_SHA256_MISMATCH naming the file', async (t) => {
  const dir = copyBundle(DEFAULT_MODEL)
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'decoder.onnx')
  const bytes = readFileSync(path)
  bytes[bytes.length - 1] ^= 0xff
  writeFileSync(path, bytes)
  await assert.rejects(readBundle(dir), (e: unknown) => {
    assert.ok(e instanceof BundleError)
    assert.equal(e.code, 'BUNDLE_SHA256_MISMATCH')
    assert.ok(e.message.includes(path), e.message)
    return true
  })
})

test('a missing graph, a truncated graph and an invalid manifest are refused naming the file', async (t) => {
  const dir = copyBundle(DEFAULT_MODEL)
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  rmSync(join(dir, 'keep-scores.onnx'))
  await assert.rejects(readBundle(dir), (e: unknown) => e instanceof BundleError && e.code === 'BUNDLE_GRAPH_MISSING' && e.message.includes('keep-scores.onnx'))

  const dir2 = copyBundle(BASELINE_MODEL)
  t.after(() => rmSync(dir2, { recursive: true, force: true }))
  writeFileSync(join(dir2, 'encoder.onnx'), 'not a graph')
  await assert.rejects(readBundle(dir2), (e: unknown) => e instanceof BundleError && e.code === 'BUNDLE_SIZE_MISMATCH' && e.message.includes('encoder.onnx'))

  const manifestPath = join(dir2, 'manifest.json')
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'))
  manifest.patch_size = 'eight'
  writeFileSync(manifestPath, JSON.stringify(manifest))
  await assert.rejects(readBundle(dir2), (e: unknown) => e instanceof BundleError && e.code === 'BUNDLE_MANIFEST_INVALID' && e.message.includes(manifestPath) && e.message.includes('/patch_size'))

  delete manifest.patch_size
  manifest.patch_size = 8
  manifest.graphs.keep_scores = manifest.graphs.encoder // a plain MAE bundle must not have keep_scores
  writeFileSync(manifestPath, JSON.stringify(manifest))
  await assert.rejects(readBundle(dir2), (e: unknown) => e instanceof BundleError && e.code === 'BUNDLE_MANIFEST_INVALID')
})

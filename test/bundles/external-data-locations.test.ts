/**
 * A graph's external-data locations must be exactly the files the manifest lists and hashes, as plain
 * names in the bundle: onnxruntime reads whatever locations a graph names (the review proved it reads
 * an unlisted file and `../outside.bin`), so anything else refuses the bundle. Symlinked bundle files
 * are refused too. The scanner is exercised on the protobuf bytes of an external-data entry, split
 * across reads; the shipped bundles (no external data) still load.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkExternalLocations, readBundle } from '../../src/bundles/bundle-reader.js'
import { MODELS_DIR, BASELINE_MODEL } from '../helpers/server.js'

/** The protobuf bytes of StringStringEntryProto {key: "location", value} inside a TensorProto's external_data. */
function locationEntry (value: string): Buffer {
  const v = Buffer.from(value)
  return Buffer.concat([Buffer.from([0x0a, 0x08]), Buffer.from('location'), Buffer.from([0x12, v.length]), v])
}

function graphFile (...parts: Buffer[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'clmae-graph-'))
  const path = join(dir, 'encoder.onnx')
  writeFileSync(path, Buffer.concat(parts))
  return path
}

test('a graph naming unlisted, traversing or missing external data is refused', async () => {
  const junk = Buffer.alloc(5000, 7)
  await assert.doesNotReject(checkExternalLocations(graphFile(junk, locationEntry('encoder.onnx.data'), junk, locationEntry('encoder.onnx.data')), new Set(['encoder.onnx.data'])))
  await assert.doesNotReject(checkExternalLocations(graphFile(junk), new Set()))
  for (const location of ['unlisted.bin', '../outside.bin', '/etc/passwd', 'sub/encoder.onnx.data', '..']) {
    const graph = graphFile(junk, locationEntry('encoder.onnx.data'), locationEntry(location))
    await assert.rejects(checkExternalLocations(graph, new Set(['encoder.onnx.data'])), /does not list/, location)
  }
  // a path is refused even when the manifest lists it the same way (names are plain files in the bundle)
  await assert.rejects(checkExternalLocations(graphFile(junk, locationEntry('../outside.bin')), new Set(['../outside.bin'])), /does not list/)
  await assert.rejects(checkExternalLocations(graphFile(junk), new Set(['encoder.onnx.data'])), /does not read/)
})

test('an entry split across two reads of the stream is still found', async () => {
  const entry = locationEntry('../outside.bin')
  const filler = Buffer.alloc(4 * 1024 * 1024 - 5, 1) // the 4 MiB read boundary falls inside the entry
  await assert.rejects(checkExternalLocations(graphFile(filler, entry, Buffer.alloc(100)), new Set()), /does not list/)
})

test('a symlinked graph file is refused; the shipped bundle loads', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clmae-bundle-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(join(MODELS_DIR, BASELINE_MODEL), dir, { recursive: true })
  await readBundle(dir)
  rmSync(join(dir, 'encoder.onnx'))
  symlinkSync(join(MODELS_DIR, BASELINE_MODEL, 'encoder.onnx'), join(dir, 'encoder.onnx'))
  await assert.rejects(readBundle(dir), (e: { code?: string }) => e.code === 'BUNDLE_MANIFEST_INVALID')
})

test('a manifest whose numbers disagree is refused at load, not answered with a 500 later', async (t) => {
  const { readFileSync } = await import('node:fs')
  const cases: Array<[string, (m: any) => void]> = [
    ['resize below crop', (m) => { m.eval_transform.resize_shorter_side = m.eval_transform.center_crop - 1 }],
    ['crop != image_size', (m) => { m.eval_transform.center_crop = m.image_size + 8; m.eval_transform.resize_shorter_side = m.image_size + 16 }],
    ['num_patches != grid', (m) => { m.num_patches = m.num_patches + 1 }]
  ]
  for (const [name, change] of cases) {
    const dir = mkdtempSync(join(tmpdir(), 'clmae-bundle-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    cpSync(join(MODELS_DIR, BASELINE_MODEL), dir, { recursive: true })
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))
    change(manifest)
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest))
    await assert.rejects(readBundle(dir), (e: { code?: string }) => e.code === 'BUNDLE_MANIFEST_INVALID', name)
  }
})

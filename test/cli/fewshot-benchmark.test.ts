import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import sharp from 'sharp'
import { main, renderMarkdown } from '../../src/cli/fewshot-benchmark.js'
import { MODELS_DIR, DEFAULT_MODEL } from '../helpers/server.js'

const COLOURS: Record<string, [number, number, number]> = { red: [220, 30, 30], green: [30, 200, 40], blue: [30, 40, 220] }

/** A tiny ImageFolder: DIR/<class>/<i>.png, colour plus a per-image pattern. */
async function writeFolder (dir: string, perClass: number): Promise<void> {
  for (const [name, rgb] of Object.entries(COLOURS)) {
    mkdirSync(join(dir, name), { recursive: true })
    for (let i = 0; i < perClass; i++) {
      const raw = Buffer.alloc(48 * 48 * 3)
      for (let p = 0; p < 48 * 48; p++) for (let c = 0; c < 3; c++) raw[p * 3 + c] = Math.max(0, Math.min(255, rgb[c] + ((p * (i + 3)) % 21) - 10))
      await sharp(raw, { raw: { width: 48, height: 48, channels: 3 } }).png().toFile(join(dir, name, `${i}.png`))
    }
  }
}

test('the benchmark runs the protocol on a split and an unsplit folder, stamped with the encoder sha256', { timeout: 300_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'clmae-fewshot-'))
  t.after(() => rmSync(root, { recursive: true, force: true }))
  await writeFolder(join(root, 'split', 'train'), 4)
  await writeFolder(join(root, 'split', 'val'), 3)
  await writeFolder(join(root, 'flat'), 6)
  const out = join(root, 'out', 'results.json')
  const report = await main(['--data', join(root, 'split'), '--data', join(root, 'flat'), '--models-dir', MODELS_DIR, '--model', DEFAULT_MODEL,
    '--shots', '1,2', '--seeds', '0,1', '--max-test-per-class', '2', '--pixels', '8', '--out-json', out])
  assert.ok(report !== undefined)
  const written = JSON.parse(readFileSync(out, 'utf8'))
  assert.deepEqual(written, JSON.parse(JSON.stringify(report)))
  // The registry verified encoder.onnx against this sha256 when it loaded the bundle.
  const sha = (JSON.parse(readFileSync(join(MODELS_DIR, DEFAULT_MODEL, 'manifest.json'), 'utf8')) as { graphs: { encoder: { sha256: string } } }).graphs.encoder.sha256
  assert.match(sha, /^[0-9a-f]{64}$/)
  assert.equal(report.models[DEFAULT_MODEL].encoder_sha256, sha)

  const [split, flat] = report.datasets
  assert.deepEqual(split.classes, ['blue', 'green', 'red'])
  assert.match(split.split, /val split/)
  assert.equal(split.test_images, 6, 'capped to 2 per class')
  assert.match(flat.split, /seeded stratified split \(test fraction 0.2, seed 0\)/)
  for (const d of report.datasets) {
    assert.deepEqual(Object.keys(d.results), [DEFAULT_MODEL, 'pixels-8x8'])
    for (const rows of Object.values(d.results)) {
      assert.deepEqual(rows.map((r) => r.shots), [1, 2])
      for (const r of rows) {
        assert.equal(r.acc1.runs.length, 2)
        assert.ok(r.acc5.mean >= r.acc1.mean)
        assert.equal(r.acc5.mean, 1, 'only 3 classes: the top 5 always hold the truth')
      }
    }
  }
  // Solid colours are separable from raw pixels at 2 shots.
  assert.equal(flat.results['pixels-8x8'][1].acc1.mean, 1)
  const markdown = renderMarkdown(report)
  assert.match(markdown, /\| split \| clmae-vit-mini-p8-64 \| /)
  assert.match(markdown, new RegExp(sha))
})

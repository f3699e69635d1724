/**
 * An imported released checkpoint served end to end. training/tools/released_checkpoints.py writes two
 * facebookresearch/mae-layout ViT-B/16 checkpoints (width 768, 12 heads, depth 2, random weights; the same
 * seed, so the same encoder): mae_pretrain_vit_base_full.pth (encoder + decoder) and mae_pretrain_vit_base.pth
 * (encoder only). `python -m clmae.import_checkpoint` turns them into format-2 bundles in a temp models
 * directory (the encoder-only one with --external-data: its weights in encoder.onnx.data, as a ViT-H's must
 * be), and the real app serves them: embeddings equal timm's forward_features on the same checkpoint
 * (training/tools/timm_reference_embedding.py) within 1e-4, reconstructions work with the decoder and answer
 * 422 MODEL_NO_DECODER without it, and a few-shot classifier is created and predicts.
 * Needs .venv (npm test creates it before the service tests); skipped, saying so, when it is missing.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readBundle } from '../../src/bundles/bundle-reader.js'
import { IMAGES_DIR, postJson, startServer, type TestServer } from '../helpers/server.js'
import { expectProblem } from '../helpers/problem.js'
import { colourImage } from '../helpers/colour-image.js'

const REPO = new URL('../../', import.meta.url).pathname
const PYTHON = join(REPO, '.venv/bin/python')
const SKIP = existsSync(PYTHON) ? false : `${PYTHON} is missing: npm test (scripts/test-all.sh) creates it before these tests`
const opts = { skip: SKIP, timeout: 900_000 }
const TOLERANCE = 1e-4
const FULL = 'mae-vit-b-full'
const ENCODER_ONLY = 'mae-vit-b-encoder'
const IMAGE = new URL('gradient.png', IMAGES_DIR).pathname

let server: TestServer
let root: string
let reference: { cls: number[], mean: number[] }

function python (...args: string[]): string {
  // stderr is captured (the exporter's warnings); a failure throws with it in the message
  return execFileSync(PYTHON, args, { cwd: REPO, env: { ...process.env, PYTHONPATH: join(REPO, 'training') }, encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'pipe'] })
}

before(async () => {
  if (SKIP !== false) return
  root = mkdtempSync(join(tmpdir(), 'clmae-imported-'))
  const models = join(root, 'models')
  mkdirSync(models)
  const full = join(root, 'mae_pretrain_vit_base_full.pth')
  const encoderOnly = join(root, 'mae_pretrain_vit_base.pth')
  python('training/tools/released_checkpoints.py', '--layout', 'mae-full', '--width', '768', '--depth', '2', '--out', full)
  python('training/tools/released_checkpoints.py', '--layout', 'mae-encoder', '--width', '768', '--depth', '2', '--out', encoderOnly)
  python('-m', 'clmae.import_checkpoint', '--format', 'mae', '--checkpoint', full, '--norm-pix-loss', 'true', '--output', join(models, FULL))
  python('-m', 'clmae.import_checkpoint', '--format', 'mae', '--checkpoint', encoderOnly, '--output', join(models, ENCODER_ONLY), '--external-data')
  python('training/tools/timm_reference_embedding.py', '--format', 'mae', '--checkpoint', full, '--bundle', join(models, FULL),
    '--image', IMAGE, '--out', join(root, 'reference.json'))
  reference = JSON.parse(readFileSync(join(root, 'reference.json'), 'utf8'))
  server = await startServer(undefined, { modelsDir: models, defaultModel: FULL, maxBatchSize: 4 })
}, { timeout: 900_000 })

after(async () => {
  await server?.app.close()
  if (root !== undefined) rmSync(root, { recursive: true, force: true })
})

function maxAbsDiff (a: number[], b: number[]): number {
  assert.equal(a.length, b.length)
  return Math.max(...a.map((x, i) => Math.abs(x - b[i])))
}

async function embed (model: string, pooling: 'cls' | 'mean'): Promise<number[]> {
  const response = await postJson(`${server.url}/v1/embeddings`, { input: readFileSync(IMAGE).toString('base64'), model, pooling, normalize: false })
  const body = await response.json() as any
  assert.equal(response.status, 200, JSON.stringify(body))
  return body.data[0].embedding
}


test('GET /v1/models: both format-2 bundles, which has a decoder, their source and architecture', opts, async () => {
  const body = await (await fetch(`${server.url}/v1/models`)).json() as any
  const full = body.data.find((m: any) => m.id === FULL)
  const encoderOnly = body.data.find((m: any) => m.id === ENCODER_ONLY)
  assert.equal(full.default, true)
  assert.deepEqual([full.has_decoder, full.has_masking_module, full.method], [true, false, 'mae'])
  assert.deepEqual([encoderOnly.has_decoder, encoderOnly.has_masking_module], [false, false])
  assert.deepEqual(Object.keys(full.sha256).sort(), ['decoder', 'encoder'])
  assert.deepEqual(Object.keys(encoderOnly.sha256), ['encoder'])
  assert.equal(full.manifest.format_version, 2)
  assert.equal(full.manifest.source.file, 'mae_pretrain_vit_base_full.pth')
  assert.equal(full.manifest.architecture.num_heads.value, 12)
  assert.equal(encoderOnly.manifest.norm_pix_loss, null)
  assert.equal(encoderOnly.manifest.graphs.encoder.external_data[0].file, 'encoder.onnx.data')
})

test('an external-data file is verified like a graph: one changed byte refuses the bundle, naming the file', opts, async () => {
  const copy = join(root, 'tampered')
  cpSync(join(root, 'models', ENCODER_ONLY), copy, { recursive: true })
  await readBundle(copy)
  const data = join(copy, 'encoder.onnx.data')
  const bytes = readFileSync(data)
  bytes[1000] ^= 1
  writeFileSync(data, bytes)
  await assert.rejects(readBundle(copy), (error: any) => error.code === 'BUNDLE_SHA256_MISMATCH' && error.message.includes(data))
})

test('embeddings of the imported encoder equal timm forward_features on the checkpoint (cls and mean)', opts, async () => {
  for (const pooling of ['cls', 'mean'] as const) {
    const served = await embed(FULL, pooling)
    assert.equal(served.length, 768)
    assert.ok(maxAbsDiff(served, reference[pooling]) < TOLERANCE, `${pooling}: ${maxAbsDiff(served, reference[pooling])}`)
    // the encoder-only file holds the same encoder: the same numbers from the other bundle
    assert.ok(maxAbsDiff(await embed(ENCODER_ONLY, pooling), served) < TOLERANCE)
  }
})

test('reconstructions with the decoder; 422 MODEL_NO_DECODER without it; no masking module either way', opts, async () => {
  const input = readFileSync(IMAGE).toString('base64')
  const response = await postJson(`${server.url}/v1/reconstructions`, { input, model: FULL, masking: 'random', seed: 7 })
  const body = await response.json() as any
  assert.equal(response.status, 200, JSON.stringify(body))
  assert.deepEqual(body.grid, { rows: 14, cols: 14 })
  assert.equal(body.num_kept, 49)
  assert.equal(body.norm_pix.used, true)
  const errors = body.patch_error.flat()
  assert.equal(errors.filter((e: number | null) => e === null).length, 49)
  assert.ok(errors.every((e: number | null) => e === null || (Number.isFinite(e) && e >= 0)))
  for (const panel of Object.values(body.panels) as string[]) assert.ok(Buffer.from(panel, 'base64').subarray(1, 4).toString() === 'PNG')

  await expectProblem(await postJson(`${server.url}/v1/reconstructions`, { input, model: ENCODER_ONLY, masking: 'random', seed: 7 }), 422, 'MODEL_NO_DECODER')
  await expectProblem(await postJson(`${server.url}/v1/reconstructions`, { input, model: FULL, masking: 'learned' }), 422, 'MODEL_NO_MASKING_MODULE')
  await expectProblem(await postJson(`${server.url}/v1/mask-maps`, { input, model: ENCODER_ONLY }), 422, 'MODEL_NO_MASKING_MODULE')
})

test('a few-shot classifier on the encoder-only bundle is created and predicts', opts, async () => {
  const red: [number, number, number] = [220, 30, 30]
  const blue: [number, number, number] = [30, 40, 220]
  const examples = []
  for (let i = 0; i < 3; i++) examples.push({ label: 'red', input: await colourImage(red, i) }, { label: 'blue', input: await colourImage(blue, i) })
  const created = await postJson(`${server.url}/v1/classifiers`, { name: 'imported', model: ENCODER_ONLY, examples })
  const c = await created.json() as any
  assert.equal(created.status, 201, JSON.stringify(c))
  assert.equal(c.model, ENCODER_ONLY)
  assert.equal(c.dim, 768)
  const models = await (await fetch(`${server.url}/v1/models`)).json() as any
  assert.equal(c.model_sha256, models.data.find((m: any) => m.id === ENCODER_ONLY).sha256.encoder)
  const predicted = await postJson(`${server.url}/v1/classifiers/${c.id}/predict`, { input: [await colourImage(red, 9), await colourImage(blue, 9)] })
  const p = await predicted.json() as any
  assert.equal(predicted.status, 200, JSON.stringify(p))
  assert.deepEqual(p.data.map((d: any) => d.label), ['red', 'blue'])
})

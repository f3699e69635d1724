/**
 * An int8 variant served end to end: `python -m clmae.quantize` turns the shipped default bundle into
 * <name>-int8 in a temp models directory (beside a copy of the fp32 bundle), and the real app (onnxruntime-node)
 * loads it: GET /v1/models marks it with `quantization` (null on the fp32 model), its embeddings stay close
 * to the fp32 ones, and a classifier fitted on the fp32 encoder answers 409 CLASSIFIER_MODEL_MISMATCH on the
 * int8 model until it is re-embedded there. Fidelity on real photos is bench/int8-fidelity.ts's job.
 * Needs .venv (npm test creates it before the service tests); skipped, saying so, when it is missing.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_MODEL, IMAGES_DIR, MODELS_DIR, postJson, startServer, type TestServer } from '../helpers/server.js'
import { expectProblem } from '../helpers/problem.js'
import { colourImage } from '../helpers/colour-image.js'

const REPO = new URL('../../', import.meta.url).pathname
const PYTHON = join(REPO, '.venv/bin/python')
const SKIP = existsSync(PYTHON) ? false : `${PYTHON} is missing: npm test (scripts/test-all.sh) creates it before these tests`
const opts = { skip: SKIP, timeout: 600_000 }
const INT8 = `${DEFAULT_MODEL}-int8-test`
/** one synthetic image, int8 vs fp32 mean-pooled embedding; the photos' figures are in README (int8) */
const MIN_COSINE = 0.95

let server: TestServer
let root: string

before(async () => {
  if (SKIP !== false) return
  root = mkdtempSync(join(tmpdir(), 'clmae-int8-'))
  const models = join(root, 'models')
  mkdirSync(models)
  cpSync(join(MODELS_DIR, DEFAULT_MODEL), join(models, DEFAULT_MODEL), { recursive: true })
  execFileSync(PYTHON, ['-m', 'clmae.quantize', '--bundle', join(models, DEFAULT_MODEL), '--output', join(models, INT8), '--name', INT8],
    { cwd: REPO, env: { ...process.env, PYTHONPATH: join(REPO, 'training') }, encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'pipe'] })
  server = await startServer(undefined, { modelsDir: models, defaultModel: DEFAULT_MODEL, maxBatchSize: 4 })
}, { timeout: 600_000 })

after(async () => {
  await server?.app.close()
  if (root !== undefined) rmSync(root, { recursive: true, force: true })
})


async function embed (model: string, input: string): Promise<number[]> {
  const response = await postJson(`${server.url}/v1/embeddings`, { input, model, pooling: 'mean', normalize: true })
  const body = await response.json() as any
  assert.equal(response.status, 200, JSON.stringify(body))
  return body.data[0].embedding
}

test('GET /v1/models marks the int8 variant with its quantization and source; the fp32 model has null', opts, async () => {
  const body = await (await fetch(`${server.url}/v1/models`)).json() as any
  const fp32 = body.data.find((m: any) => m.id === DEFAULT_MODEL)
  const int8 = body.data.find((m: any) => m.id === INT8)
  assert.ok(int8 !== undefined, `loaded: ${body.data.map((m: any) => m.id).join(', ')}`)
  assert.equal(fp32.quantization, null)
  assert.deepEqual(int8.quantization, { method: 'dynamic', weight_type: 'int8', per_channel: true, source_model: DEFAULT_MODEL, source_encoder_sha256: fp32.sha256.encoder })
  assert.equal(int8.manifest.quantization.source.name, DEFAULT_MODEL)
  assert.notEqual(int8.sha256.encoder, fp32.sha256.encoder)
  assert.deepEqual([int8.has_decoder, int8.has_masking_module, int8.method], [true, true, 'clmae'])
})

test('the int8 graphs run in onnxruntime-node: embeddings near fp32, mask maps and reconstructions answer', opts, async () => {
  const input = readFileSync(new URL('gradient.png', IMAGES_DIR)).toString('base64')
  const [a, b] = [await embed(DEFAULT_MODEL, input), await embed(INT8, input)]
  const cosine = a.reduce((s, x, i) => s + x * b[i], 0)
  assert.ok(cosine > MIN_COSINE, `cosine ${cosine}`)
  assert.equal((await postJson(`${server.url}/v1/mask-maps`, { input, model: INT8 })).status, 200)
  assert.equal((await postJson(`${server.url}/v1/reconstructions`, { input, model: INT8, masking: 'learned' })).status, 200)
})

test('a classifier pinned to the fp32 encoder answers 409 on the int8 model until re-embedded there', opts, async () => {
  const examples = []
  for (let i = 0; i < 2; i++) {
    examples.push({ label: 'red', input: await colourImage([220, 30, 30], i) }, { label: 'blue', input: await colourImage([30, 40, 220], i) })
  }
  const created = await postJson(`${server.url}/v1/classifiers`, { keep_images: true, model: DEFAULT_MODEL, examples })
  const c = await created.json() as any
  assert.equal(created.status, 201, JSON.stringify(c))
  const image = await colourImage([220, 30, 30], 5)
  assert.equal((await postJson(`${server.url}/v1/classifiers/${c.id}/predict`, { input: image })).status, 200)
  await expectProblem(await postJson(`${server.url}/v1/classifiers/${c.id}/predict`, { input: image, model: INT8 }), 409, 'CLASSIFIER_MODEL_MISMATCH')

  const reembedded = await postJson(`${server.url}/v1/classifiers/${c.id}/reembed`, { model: INT8 })
  const r = await reembedded.json() as any
  assert.equal(reembedded.status, 200, JSON.stringify(r))
  assert.equal(r.model, INT8)
  const predicted = await postJson(`${server.url}/v1/classifiers/${c.id}/predict`, { input: image, model: INT8 })
  assert.equal(predicted.status, 200)
  assert.equal((await predicted.json() as any).data[0].label, 'red')
  await expectProblem(await postJson(`${server.url}/v1/classifiers/${c.id}/predict`, { input: image, model: DEFAULT_MODEL }), 409, 'CLASSIFIER_MODEL_MISMATCH')
})

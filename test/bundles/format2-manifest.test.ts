/**
 * Manifest format 2 without Python: an encoder-only bundle derived from the shipped mae-vit-mini-p8-64
 * (test/helpers/format2-bundle.ts) loads next to the format-1 original, serves the same embeddings,
 * answers reconstructions with 422 MODEL_NO_DECODER, and a format-2 manifest whose fields contradict its
 * graphs is refused at load time.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readBundle } from '../../src/bundles/bundle-reader.js'
import { manifestErrors } from '../../src/bundles/manifest.js'
import { BASELINE_MODEL, IMAGES_DIR, MODELS_DIR, postJson, startServer, type TestServer } from '../helpers/server.js'
import { writeEncoderOnlyBundle } from '../helpers/format2-bundle.js'
import { expectProblem } from '../helpers/problem.js'

const ENCODER_ONLY = 'mae-vit-mini-encoder-only'
let root: string
let server: TestServer

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'clmae-format2-'))
  cpSync(join(MODELS_DIR, BASELINE_MODEL), join(root, BASELINE_MODEL), { recursive: true })
  writeEncoderOnlyBundle(join(MODELS_DIR, BASELINE_MODEL), join(root, ENCODER_ONLY), ENCODER_ONLY)
  server = await startServer(undefined, { modelsDir: root, defaultModel: ENCODER_ONLY, maxBatchSize: 2 })
})

after(async () => {
  await server?.app.close()
  rmSync(root, { recursive: true, force: true })
})

test('format 1 and format 2 load side by side; /v1/models says which has a decoder', async () => {
  const body = await (await fetch(`${server.url}/v1/models`)).json() as any
  const v2 = body.data.find((m: any) => m.id === ENCODER_ONLY)
  const v1 = body.data.find((m: any) => m.id === BASELINE_MODEL)
  assert.deepEqual([v2.manifest.format_version, v2.has_decoder, v2.has_masking_module], [2, false, false])
  assert.deepEqual([v1.manifest.format_version, v1.has_decoder, v1.has_masking_module], [1, true, false])
  assert.deepEqual(Object.keys(v2.sha256), ['encoder'])
  assert.deepEqual(v2.batching.queue_depth, { encoder: 0 })
  assert.equal(v2.sha256.encoder, v1.sha256.encoder)
})

test('the same encoder graph gives the same embeddings under either manifest', async () => {
  const input = readFileSync(new URL('gradient.png', IMAGES_DIR)).toString('base64')
  const embed = async (model: string): Promise<number[]> => {
    const response = await postJson(`${server.url}/v1/embeddings`, { input, model })
    assert.equal(response.status, 200)
    return ((await response.json()) as any).data[0].embedding
  }
  assert.deepEqual(await embed(ENCODER_ONLY), await embed(BASELINE_MODEL))
})

test('reconstructions without a decoder: 422 MODEL_NO_DECODER, before the image is read', async () => {
  const input = readFileSync(new URL('gradient.png', IMAGES_DIR)).toString('base64')
  for (const masking of ['random', 'learned', 'given']) {
    const body = masking === 'given' ? { input, masking, masked_patches: [0, 1] } : { input, masking }
    const problem = await expectProblem(await postJson(`${server.url}/v1/reconstructions`, body), 422, 'MODEL_NO_DECODER')
    assert.match(problem.detail, new RegExp(ENCODER_ONLY))
  }
  // the check needs no image: an undecodable one still gets the model's answer
  await expectProblem(await postJson(`${server.url}/v1/reconstructions`, { input: 'AAAA', masking: 'random' }), 422, 'MODEL_NO_DECODER')
  await expectProblem(await postJson(`${server.url}/v1/mask-maps`, { input }), 422, 'MODEL_NO_MASKING_MODULE')
})

test('a format-2 manifest whose fields contradict its graphs is refused', async () => {
  const dir = join(root, 'contradictory')
  const manifest = writeEncoderOnlyBundle(join(MODELS_DIR, BASELINE_MODEL), dir, 'contradictory') as any
  assert.deepEqual(manifestErrors(manifest), [])
  const cases: Array<[string, (m: any) => void]> = [
    ['norm_pix_loss without a decoder', (m) => { m.norm_pix_loss = true }],
    ['decoder dims without a decoder', (m) => { m.dims.decoder_embed_dim = 512 }],
    ['keep_scores with method mae', (m) => { m.graphs.keep_scores = m.graphs.encoder }],
    ['a config name (format 1 only)', (m) => { m.config = 'vit_mini_p8_64' }],
    ['no source', (m) => { delete m.source }],
    ['an architecture value without its origin', (m) => { delete m.architecture.num_heads.from }]
  ]
  for (const [what, change] of cases) {
    const broken = structuredClone(manifest)
    change(broken)
    assert.notDeepEqual(manifestErrors(broken), [], what)
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(broken))
    await assert.rejects(readBundle(dir), (error: any) => error.code === 'BUNDLE_MANIFEST_INVALID', what)
  }
})

/**
 * Issue 12, defect 1 across processes: two replicas (test/helpers/gated-replica.ts: the real app in a
 * child process, its onnxruntime backends wrapped so the test can hold one embedding run open) on one
 * PostgreSQL. Each order of the add-examples / re-embed race is forced, not hoped for: the first request
 * is held inside its embedding run on replica A while the other request commits on replica B.
 *   1. add-examples on A embeds with the pinned model; B re-embeds to another model and commits.
 *   2. re-embed on A embeds the stored images; B adds examples and commits.
 * Both must answer 409 CLASSIFIER_CONFLICT, and the stored embeddings must all come from the model the
 * classifier is pinned to (compared with what /v1/embeddings gives for the same images).
 * Also: a refit and a delete committed on one replica are what the other serves at once (its probe
 * cache holds the older version).
 * SQLite allows one process per file (refused at start-up: replicas.test.ts), so there the race is
 * in-process: test/http/routes/classifier-guards.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import sharp from 'sharp'
import { startGatedReplica, type GatedReplica } from '../helpers/gated-replica.js'
import { BASELINE_MODEL, DEFAULT_MODEL, MODELS_DIR, postJson } from '../helpers/server.js'
import { expectProblem } from '../helpers/problem.js'
import { TEST_DATABASE_URL, freshPostgresUrl } from '../helpers/test-database.js'

/** float32 embeddings of one image from one model, computed twice, agree far closer than this; the two models' differ by far more */
const SAME_MODEL_TOLERANCE = 1e-4

async function image (shade: number): Promise<string> {
  const raw = Buffer.alloc(64 * 64 * 3, shade)
  for (let i = 0; i < raw.length; i += 7) raw[i] = (shade * 3 + i) % 256
  return `data:image/png;base64,${(await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer()).toString('base64')}`
}

async function json<T> (response: Response | Promise<Response>, status: number): Promise<T> {
  const r = await response
  const body = await r.text()
  assert.equal(r.status, status, body.slice(0, 500))
  return JSON.parse(body) as T
}

/** What /v1/embeddings gives for `inputs` with `model` (mean pooling, normalised: the classifiers' pin). */
async function embeddingsOf (replica: GatedReplica, model: string, inputs: string[]): Promise<number[][]> {
  const r = await json<{ data: { embedding: number[] }[] }>(postJson(`${replica.url}/v1/embeddings`, { model, input: inputs, pooling: 'mean', normalize: true }), 200)
  return r.data.map((d) => d.embedding)
}

function maxDifference (a: number[], b: number[]): number {
  assert.equal(a.length, b.length)
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0)
}

/** Every stored embedding of `id` is `model`'s embedding of the matching image (and not the other model's). */
async function assertEmbeddedBy (replica: GatedReplica, id: string, images: string[], model: string, other: string): Promise<void> {
  const stored = (await json<{ examples: { embedding: number[] }[] }>(fetch(`${replica.url}/v1/classifiers/${id}/export`), 200)).examples
  const want = await embeddingsOf(replica, model, images)
  const wrong = await embeddingsOf(replica, other, images)
  images.forEach((_, i) => {
    assert.ok(maxDifference(stored[i].embedding, want[i]) < SAME_MODEL_TOLERANCE, `example ${i} was embedded by ${model}`)
    assert.ok(maxDifference(stored[i].embedding, wrong[i]) > 100 * SAME_MODEL_TOLERANCE, `example ${i} was not embedded by ${other}`)
  })
}

interface View { id: string, version: number, num_examples: number, model: string }

test('add-examples vs re-embed on two replicas: 409 CLASSIFIER_CONFLICT in both orders, encoders never mixed; refits and deletes seen at once',
  { timeout: 600_000, skip: TEST_DATABASE_URL === '' ? 'needs CLMAE_TEST_DATABASE_URL (npm test starts a PostgreSQL); on SQLite see classifier-guards.test.ts' : false }, async (t) => {
    const env = { CLMAE_DATABASE_URL: await freshPostgresUrl(t), CLMAE_MODELS_DIR: MODELS_DIR }
    const [a, b] = await Promise.all([startGatedReplica(t, env), startGatedReplica(t, env)])
    const images = await Promise.all([10, 30, 200, 240].map(image))
    const examples = images.map((input, i) => ({ label: i < 2 ? 'a' : 'b', input }))
    const url = (r: GatedReplica, path = ''): string => `${r.url}/v1/classifiers${path}`

    // 1. add-examples on A is inside its embedding (pinned model) while B re-embeds to the baseline and commits
    const one = await json<View>(postJson(url(a), { method: 'centroid', keep_images: true, examples }), 201)
    const query = { embeddings: await embeddingsOf(a, DEFAULT_MODEL, [images[0]]) }
    // both replicas serve version 1 and hold it in their probe caches
    for (const r of [a, b]) assert.equal((await json<{ version: number }>(postJson(url(r, `/${one.id}/predict`), query), 200)).version, 1)
    const heldAdd = a.hold(DEFAULT_MODEL)
    const adding = postJson(url(a, `/${one.id}/examples`), { examples: [{ label: 'a', input: await image(50) }] })
    await heldAdd.entered
    const reembedded = await json<View>(postJson(url(b, `/${one.id}/reembed`), { model: BASELINE_MODEL }), 200)
    assert.deepEqual([reembedded.version, reembedded.model], [2, BASELINE_MODEL])
    // A serves B's refit at once: the new version, pinned to the baseline (its cache holds version 1)
    const onA = await json<{ version: number, model: string }>(postJson(url(a, `/${one.id}/predict`), { embeddings: await embeddingsOf(a, BASELINE_MODEL, [images[0]]) }), 200)
    assert.deepEqual([onA.version, onA.model], [2, BASELINE_MODEL])
    heldAdd.release()
    await expectProblem(await adding, 409, 'CLASSIFIER_CONFLICT')
    const afterOne = await json<View>(fetch(url(b, `/${one.id}`)), 200)
    assert.deepEqual([afterOne.version, afterOne.num_examples, afterOne.model], [2, 4, BASELINE_MODEL])
    await assertEmbeddedBy(b, one.id, images, BASELINE_MODEL, DEFAULT_MODEL)

    // 2. re-embed on A is inside its embedding of the stored images while B adds an example and commits
    const two = await json<View>(postJson(url(b), { method: 'centroid', keep_images: true, examples }), 201)
    const heldReembed = a.hold(BASELINE_MODEL)
    const reembedding = postJson(url(a, `/${two.id}/reembed`), { model: BASELINE_MODEL })
    await heldReembed.entered
    const added = await json<View>(postJson(url(b, `/${two.id}/examples`), { examples: [{ label: 'b', input: await image(220) }] }), 200)
    assert.deepEqual([added.version, added.num_examples], [2, 5])
    heldReembed.release()
    await expectProblem(await reembedding, 409, 'CLASSIFIER_CONFLICT')
    const afterTwo = await json<View>(fetch(url(a, `/${two.id}`)), 200)
    assert.deepEqual([afterTwo.version, afterTwo.num_examples, afterTwo.model], [2, 5, DEFAULT_MODEL])
    await assertEmbeddedBy(a, two.id, [...images, await image(220)], DEFAULT_MODEL, BASELINE_MODEL)

    // a delete on B is seen by A at once (A's cache holds the probe)
    assert.equal((await fetch(url(b, `/${one.id}`), { method: 'DELETE' })).status, 204)
    await expectProblem(await postJson(url(a, `/${one.id}/predict`), query), 404, 'CLASSIFIER_NOT_FOUND')
  })

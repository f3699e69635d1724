/**
 * Exit after the shutdown timeout (src/server.ts): process.exit while the inference thread is inside a
 * native onnxruntime run aborted the process (SIGABRT, "terminate called after throwing Napi::Error",
 * reproduced with a ViT-B and --shutdown-timeout-ms 300). quiesceInferenceThread waits for the posted
 * runs and refuses new ones. Its own file: it stops this process's shared inference thread for good.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { createOnnxBackend } from '../../src/inference/onnx-backend.js'
import { quiesceInferenceThread } from '../../src/inference/session-thread.js'
import { float32Tensor, int64Tensor } from '../../src/inference/tensor.js'
import { DEFAULT_MODEL, MODELS_DIR } from '../helpers/server.js'

test('quiesce resolves only after the runs already posted have answered, and refuses new runs', async () => {
  const backend = await createOnnxBackend(join(MODELS_DIR, DEFAULT_MODEL, 'encoder.onnx'), { executionProvider: 'cpu', intraOpThreads: 1, allowSpinning: false })
  const n = 32
  const feeds = { images: float32Tensor(new Float32Array(n * 3 * 64 * 64).fill(0.5), [n, 3, 64, 64]), ids_keep: int64Tensor(Array.from({ length: n * 64 }, (_, i) => i % 64), [n, 64]) }
  const order: string[] = []
  const runs = [1, 2, 3].map(async (k) => { await backend.run(feeds); order.push(`run ${k}`) })
  await new Promise((resolve) => setImmediate(resolve)) // the runs are posted
  await quiesceInferenceThread()
  order.push('quiesced')
  // every reply has arrived when quiesce resolves (the last run's own continuation may still be a few
  // microtasks behind): nothing is left for the thread to answer after one turn of the event loop
  const settled = await Promise.race([Promise.all(runs).then(() => 'all answered'), new Promise((resolve) => setImmediate(() => resolve('still running')))])
  assert.equal(settled, 'all answered')
  assert.deepEqual(order.slice(0, 2), ['run 1', 'run 2'], 'quiesce did not resolve before the earlier runs answered')
  await assert.rejects(backend.run(feeds), /exiting/)
})

test('quiesce without an inference thread resolves at once', async () => {
  await quiesceInferenceThread()
})

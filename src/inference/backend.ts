/**
 * What the batcher needs from an inference engine (style rule 8): one graph, run on a batch.
 * src/inference/onnx-backend.ts implements it with onnxruntime-node; tests use a fake.
 */
import type { Tensor } from './tensor.js'

export interface InferenceBackend {
  /** the execution provider actually in use, e.g. 'cpu' or 'cuda' */
  readonly executionProvider: string
  readonly inputNames: readonly string[]
  readonly outputNames: readonly string[]
  /** Runs one batch: every feed and every output has the batch axis N first. */
  run (feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>
  close (): Promise<void>
}

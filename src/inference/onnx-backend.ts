/**
 * InferenceBackend on onnxruntime-node: one InferenceSession per graph file.
 * CUDA is tried first when configured (binaries installed with ONNXRUNTIME_NODE_INSTALL=cuda12);
 * if the session cannot be created with it, the CPU provider is used and the caller is told which one runs.
 */
import * as ort from 'onnxruntime-node'
import type { InferenceBackend } from './backend.js'
import type { Tensor } from './tensor.js'

export interface OnnxBackendOptions {
  executionProvider: 'cpu' | 'cuda'
  /** 0 = onnxruntime default */
  intraOpThreads: number
  /** idle intra-op threads spin-wait (onnxruntime's default) or sleep */
  allowSpinning?: boolean
  /** called when cuda was asked for but the session fell back to cpu */
  onFallback?: (reason: string) => void
}

export async function createOnnxBackend (modelPath: string, options: OnnxBackendOptions): Promise<InferenceBackend> {
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    ...(options.intraOpThreads > 0 ? { intraOpNumThreads: options.intraOpThreads } : {}),
    // spinning threads steal the CPU that decoding needs (measured: see ortAllowSpinning in src/config.ts)
    extra: { 'session.intra_op.allow_spinning': options.allowSpinning === true ? '1' : '0' }
  }
  let session: ort.InferenceSession
  let executionProvider: string = 'cpu'
  if (options.executionProvider === 'cuda') {
    try {
      const supported = ort.listSupportedBackends().map((b) => b.name)
      if (!supported.includes('cuda')) throw new Error(`this onnxruntime-node build supports ${supported.join(', ')}, not cuda (install with ONNXRUNTIME_NODE_INSTALL=cuda12)`)
      session = await ort.InferenceSession.create(modelPath, { ...base, executionProviders: ['cuda'] })
      executionProvider = 'cuda'
    } catch (error) {
      options.onFallback?.((error as Error).message)
      session = await ort.InferenceSession.create(modelPath, { ...base, executionProviders: ['cpu'] })
    }
  } else {
    session = await ort.InferenceSession.create(modelPath, { ...base, executionProviders: ['cpu'] })
  }
  return new OnnxBackend(session, executionProvider)
}

class OnnxBackend implements InferenceBackend {
  constructor (private readonly session: ort.InferenceSession, readonly executionProvider: string) {}

  get inputNames (): readonly string[] { return this.session.inputNames }
  get outputNames (): readonly string[] { return this.session.outputNames }

  async run (feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {}
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.type, t.data, t.dims)
    const results = await this.session.run(ortFeeds)
    const out: Record<string, Tensor> = {}
    for (const [name, value] of Object.entries(results)) {
      if (value.type !== 'float32' && value.type !== 'int64') throw new Error(`output ${name} has type ${value.type}; bundles use float32 and int64. This is a bug.`)
      out[name] = { type: value.type, data: value.data as Float32Array | BigInt64Array, dims: [...value.dims] }
    }
    return out
  }

  async close (): Promise<void> {
    await this.session.release()
  }
}

/**
 * InferenceBackend on onnxruntime-node: one InferenceSession per graph file.
 * onnxruntime-node's `run` is synchronous under its promise (it only defers the call with
 * setImmediate; microsoft/onnxruntime#19611), so on the event loop every batch would stall HTTP,
 * `/livez` and decoding for the whole run: measured, the shipped encoder's runs took 8.8 s of the main
 * thread's 10 s under load and capped throughput. By default the sessions therefore live on one
 * inference thread (session-thread.ts); `thread: 'main'` keeps the old in-process session (tests,
 * and a comparison in bench:embeddings).
 * CUDA is tried first when configured (binaries installed with ONNXRUNTIME_NODE_INSTALL=cuda12);
 * if the session cannot be created with it, the CPU provider is used and the caller is told which one runs.
 */
import * as ort from 'onnxruntime-node'
import type { InferenceBackend } from './backend.js'
import { openThroughGraphCache, type GraphCacheReport, type GraphCacheSpec } from './ort-graph-cache.js'
import { acquireInferenceThread } from './session-thread.js'
import { toPlainOutputs, type Tensor } from './tensor.js'

export interface OnnxBackendOptions {
  executionProvider: 'cpu' | 'cuda'
  /** 0 = onnxruntime default */
  intraOpThreads: number
  /** idle intra-op threads spin-wait (onnxruntime's default) or sleep */
  allowSpinning?: boolean
  /** where the session runs: the shared inference thread (default) or the calling (main) thread */
  thread?: 'worker' | 'main'
  /** called when cuda was asked for but the session fell back to cpu */
  onFallback?: (reason: string) => void
  /** the optimised-graph cache (ort-graph-cache.ts); none when undefined */
  graphCache?: GraphCacheSpec
  /** told what the cache did (hit, miss, rebuilt, unwritable), on the calling thread */
  onGraphCache?: (report: GraphCacheReport) => void
}

/** The options a session is created with, plain data so they cross to the inference thread. */
export type SessionSpec = Omit<OnnxBackendOptions, 'thread' | 'onFallback' | 'onGraphCache'>

export async function createOnnxBackend (modelPath: string, options: OnnxBackendOptions): Promise<InferenceBackend> {
  const spec: SessionSpec = { executionProvider: options.executionProvider, intraOpThreads: options.intraOpThreads, allowSpinning: options.allowSpinning, graphCache: options.graphCache }
  if (options.thread === 'main') {
    const opened = await openOrtSession(modelPath, spec)
    if (opened.fallbackReason !== undefined) options.onFallback?.(opened.fallbackReason)
    if (opened.graphCache !== undefined) options.onGraphCache?.(opened.graphCache)
    return new InThreadBackend(opened.session, opened.executionProvider)
  }
  const thread = acquireInferenceThread()
  try {
    const created = await thread.createSession(modelPath, spec)
    if (created.fallbackReason !== undefined) options.onFallback?.(created.fallbackReason)
    if (created.graphCache !== undefined) options.onGraphCache?.(created.graphCache)
    return {
      executionProvider: created.executionProvider,
      inputNames: created.inputNames,
      outputNames: created.outputNames,
      run: async (feeds) => await thread.run(created.sessionId, feeds),
      close: async () => { try { await thread.release(created.sessionId) } finally { thread.releaseReference() } }
    }
  } catch (error) {
    thread.releaseReference()
    throw error
  }
}

/** Creates the onnxruntime session (on whichever thread calls it), through the graph cache when one is set. */
export async function openOrtSession (modelPath: string, spec: SessionSpec): Promise<{ session: ort.InferenceSession, executionProvider: string, fallbackReason?: string, graphCache?: GraphCacheReport }> {
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    ...(spec.intraOpThreads > 0 ? { intraOpNumThreads: spec.intraOpThreads } : {}),
    // spinning threads steal the CPU that decoding needs (measured: see ortAllowSpinning in src/config.ts)
    extra: { 'session.intra_op.allow_spinning': spec.allowSpinning === true ? '1' : '0' }
  }
  const open = async (provider: 'cpu' | 'cuda'): Promise<{ session: ort.InferenceSession, graphCache?: GraphCacheReport }> => {
    const options = { ...base, executionProviders: [provider] }
    if (spec.graphCache === undefined) return { session: await ort.InferenceSession.create(modelPath, options) }
    const { session, report } = await openThroughGraphCache(modelPath, spec.graphCache, options, provider)
    return { session, graphCache: report }
  }
  if (spec.executionProvider === 'cuda') {
    try {
      const supported = ort.listSupportedBackends().map((b) => b.name)
      if (!supported.includes('cuda')) throw new Error(`this onnxruntime-node build supports ${supported.join(', ')}, not cuda (install with ONNXRUNTIME_NODE_INSTALL=cuda12)`)
      return { ...await open('cuda'), executionProvider: 'cuda' }
    } catch (error) {
      return { ...await open('cpu'), executionProvider: 'cpu', fallbackReason: (error as Error).message }
    }
  }
  return { ...await open('cpu'), executionProvider: 'cpu' }
}

/** Runs one batch on an onnxruntime session of this thread. */
export async function runOrtSession (session: ort.InferenceSession, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const ortFeeds: Record<string, ort.Tensor> = {}
  for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.type, t.data, t.dims)
  const results = await session.run(ortFeeds)
  return toPlainOutputs(Object.entries(results).map(([name, value]) => [name, value.type, value.data, value.dims]))
}

class InThreadBackend implements InferenceBackend {
  constructor (private readonly session: ort.InferenceSession, readonly executionProvider: string) {}

  get inputNames (): readonly string[] { return this.session.inputNames }
  get outputNames (): readonly string[] { return this.session.outputNames }

  async run (feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    return await runOrtSession(this.session, feeds)
  }

  async close (): Promise<void> {
    await this.session.release()
  }
}

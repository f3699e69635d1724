/**
 * A service replica for cross-process race tests: the real app (buildApp + warmUpApp, config from the
 * CLMAE_* environment like src/server.ts), built in this child process with a backend factory that
 * wraps the real onnxruntime backends so that the parent can hold one embedding run open. Nothing in
 * src/ knows about the gate: it is a test-only BackendFactory (AppDeps.backendFactory).
 *
 * Protocol (IPC, started with child_process.fork):
 *   child -> parent  { ready: port }                   listening and warmed up
 *   parent -> child  { arm: modelId }                  the next encoder run of that bundle will wait
 *   child -> parent  { entered: modelId }              that run has started and is held
 *   parent -> child  { release: modelId }              let it finish
 * startGatedReplica() (below) is the parent's side.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { basename, dirname } from 'node:path'
import type { BackendFactory } from '../../src/bundles/model-registry.js'
import type { InferenceBackend } from '../../src/inference/backend.js'

type ToChild = { arm: string } | { release: string }
type ToParent = { ready: number } | { entered: string }

async function runChild (): Promise<void> {
  const { buildApp, warmUpApp } = await import('../../src/app.js')
  const { loadConfig } = await import('../../src/config.js')
  const { createOnnxBackend } = await import('../../src/inference/onnx-backend.js')
  const send = (message: ToParent): void => { process.send?.(message) }
  const armed = new Set<string>()
  const held = new Map<string, () => void>()
  const config = loadConfig({ argv: [] })
  const backendFactory: BackendFactory = async (path, graph) => {
    const real = await createOnnxBackend(path, { executionProvider: config.executionProvider, intraOpThreads: config.ortIntraOpThreads, allowSpinning: config.ortAllowSpinning, thread: config.inferenceThread ? 'worker' : 'main' })
    const bundle = basename(dirname(path))
    const gated: InferenceBackend = {
      executionProvider: real.executionProvider,
      inputNames: real.inputNames,
      outputNames: real.outputNames,
      close: async () => { await real.close() },
      run: async (feeds) => {
        if (graph === 'encoder' && armed.delete(bundle)) {
          await new Promise<void>((resolve) => { held.set(bundle, resolve); send({ entered: bundle }) })
        }
        return await real.run(feeds)
      }
    }
    return gated
  }
  const app = await buildApp(config, { backendFactory, logger: false })
  process.on('message', (message: ToChild) => {
    if ('arm' in message) armed.add(message.arm)
    else { held.get(message.release)?.(); held.delete(message.release) }
  })
  process.on('disconnect', () => { void app.close().finally(() => process.exit(0)) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await warmUpApp(app)
  const address = app.server.address()
  send({ ready: typeof address === 'object' && address !== null ? address.port : 0 })
}

export interface GatedReplica {
  url: string
  child: ChildProcess
  /** Holds the next encoder run of `modelId` on this replica; resolves once a request is inside it. */
  hold: (modelId: string) => { entered: Promise<void>, release: () => void }
}

/** Forks this file as a replica with `env` (CLMAE_*) on top of the parent's environment; killed after the test. */
export async function startGatedReplica (t: { after: (fn: () => void) => void }, env: Record<string, string>): Promise<GatedReplica> {
  const child = fork(new URL(import.meta.url).pathname, ['--child'], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, CLMAE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc']
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica not ready after 180 s: ${stderr}`)), 180_000)
    child.on('message', (message: ToParent) => { if ('ready' in message) { clearTimeout(timer); resolve(message.ready) } })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`replica exited (${code}): ${stderr}`)) })
  })
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    hold: (modelId) => {
      const entered = new Promise<void>((resolve) => {
        const onMessage = (message: ToParent): void => {
          if ('entered' in message && message.entered === modelId) { child.off('message', onMessage); resolve() }
        }
        child.on('message', onMessage)
      })
      child.send({ arm: modelId } satisfies ToChild)
      return { entered, release: () => { child.send({ release: modelId } satisfies ToChild) } }
    }
  }
}

if (process.argv.includes('--child')) await runChild()

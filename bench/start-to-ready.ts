/**
 * `npm run bench:start-to-ready -- [--runs 5 --compiled] [-- server flags, e.g. --models-dir DIR --models NAME --default-model NAME]`
 *
 * Start-to-ready of the service with and without the optimised-graph cache (--ort-cache-dir): the time
 * from spawning the server to its first /readyz 200 (bundles verified by sha256, sessions created,
 * warm-up run), polled every 20 ms. Three modes, interleaved round by round so a drifting machine load
 * hits them alike: no cache; cold cache (an empty directory each run: the entries are written);
 * warm cache (a directory filled by an untimed start before the rounds). `--compiled` runs
 * dist/server.js as in production (`npm run build` first); without it the server runs under tsx,
 * which adds the same transpile time to every mode.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { cpuFlags } from '../src/inference/ort-graph-cache.js'
import { benchCommandLine, percentile, startServerChild } from './server-child.js'

const { arg, serverArgs } = benchCommandLine()
const runs = Number(arg('runs', '5'))
const compiled = process.argv.includes('--compiled')

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  await new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM') })
}

async function startToReady (cacheDir?: string): Promise<number> {
  const { child, readyMs } = await startServerChild(['--log-level', 'error', ...serverArgs, ...(cacheDir === undefined ? [] : ['--ort-cache-dir', cacheDir])], { compiled, pollMs: 20, readyTimeoutMs: 600_000 })
  await stop(child)
  return readyMs
}

const entries = (dir: string): number => readdirSync(dir).filter((n) => !n.startsWith('.')).length
/** each entry's name and write time: unchanged by a start that only read the cache */
const snapshot = (dir: string): string => readdirSync(dir).filter((n) => !n.startsWith('.')).sort()
  .map((n) => `${n} ${(JSON.parse(readFileSync(join(dir, n, 'entry.json'), 'utf8')) as { created_at: string }).created_at}`).join('\n')
const warmDir = mkdtempSync(join(tmpdir(), 'clmae-bench-ort-cache-'))
await startToReady(warmDir) // fills the warm cache (untimed)
const primed = snapshot(warmDir)
const times: Record<'none' | 'cold' | 'warm', number[]> = { none: [], cold: [], warm: [] }
const coldEntries: number[] = []
for (let r = 0; r < runs; r++) {
  times.none.push(await startToReady())
  const cold = mkdtempSync(join(tmpdir(), 'clmae-bench-ort-cache-'))
  times.cold.push(await startToReady(cold))
  coldEntries.push(entries(cold))
  rmSync(cold, { recursive: true, force: true })
  times.warm.push(await startToReady(warmDir))
}
const warmHitOnly = snapshot(warmDir) === primed
rmSync(warmDir, { recursive: true, force: true })

const s = (ms: number): string => (ms / 1000).toFixed(2)
const median = (v: number[]): number => percentile(v, 0.5)
console.log(`node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), CPU flags: ${cpuFlags()}`)
console.log(`server: ${compiled ? 'dist/server.js' : 'tsx src/server.ts'} ${serverArgs.join(' ') || '(shipped models)'}; ${runs} runs per mode, interleaved`)
console.log(`cache: ${primed.split('\n').length} entries written by the priming start, ${warmHitOnly ? 'none rewritten by the warm starts (every one hit)' : 'REWRITTEN by a warm start (a miss: the warm figures are not hits)'}; ${coldEntries.join('/')} written by the cold starts`)
console.log('| ort graph cache | median start-to-ready, s | min, s | max, s |')
console.log('|---|---|---|---|')
for (const [mode, name] of [['none', 'off'], ['cold', 'cold (empty directory: written)'], ['warm', 'warm (read, sha256-checked)']] as const) {
  console.log(`| ${name} | ${s(median(times[mode]))} | ${s(Math.min(...times[mode]))} | ${s(Math.max(...times[mode]))} |`)
}
console.log(`warm / off, median: ${(median(times.warm) / median(times.none)).toFixed(3)}`)

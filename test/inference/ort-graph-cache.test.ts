/**
 * The optimised-graph cache (src/inference/ort-graph-cache.ts): a miss writes the entry and a hit loads
 * it with the same outputs (through the inference thread, which reports what it did); a damaged entry
 * is found by its sha256 and rebuilt; a missing or read-only directory is reported, never fatal;
 * replicas writing one entry at once leave a valid one, and step-by-step interleavings of replicas
 * (an entry renamed in between an opener's looks, a stale "damaged" judgement) never remove a fresh
 * entry; the key moves with every part; a format-2
 * bundle whose weights are external data goes through the cache (registry, logs).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, utimesSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import fsPromises from 'node:fs/promises'
import { syncBuiltinESMExports } from 'node:module'
import { basename, join } from 'node:path'
import { promisify } from 'node:util'
import { loadConfig } from '../../src/config.js'
import { ModelRegistry } from '../../src/bundles/model-registry.js'
import { sha256File } from '../../src/bundles/bundle-reader.js'
import type { ManifestV2 } from '../../src/bundles/manifest.js'
import { createOnnxBackend } from '../../src/inference/onnx-backend.js'
import { cpuFlags, graphCacheKey, openThroughGraphCache, type GraphCacheReport } from '../../src/inference/ort-graph-cache.js'
import { float32Tensor, int64Tensor, type Tensor } from '../../src/inference/tensor.js'
import { writeEncoderOnlyBundle } from '../helpers/format2-bundle.js'
import { BASELINE_MODEL, MODELS_DIR } from '../helpers/server.js'

const REPO = new URL('../../', import.meta.url).pathname
const PYTHON = join(REPO, '.venv/bin/python')
const ENCODER = join(MODELS_DIR, BASELINE_MODEL, 'encoder.onnx')
const S = 64
const L = 64

function feeds (n: number): Record<string, Tensor> {
  const images = new Float32Array(n * 3 * S * S)
  for (let i = 0; i < images.length; i++) images[i] = Math.sin(i * 0.37) * 2
  return { images: float32Tensor(images, [n, 3, S, S]), ids_keep: int64Tensor(Array.from({ length: n * L }, (_, i) => i % L), [n, L]) }
}

function cacheDir (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'clmae-ort-cache-'))
  t.after(() => { chmodSync(dir, 0o755); rmSync(dir, { recursive: true, force: true }) })
  return dir
}

/** Opens the shipped baseline encoder through the cache on the inference thread; its outputs on `feeds(3)` and the report. */
async function openAndRun (dir: string): Promise<{ report: GraphCacheReport, outputs: Record<string, Tensor> }> {
  let report: GraphCacheReport | undefined
  const backend = await createOnnxBackend(ENCODER, { executionProvider: 'cpu', intraOpThreads: 1, graphCache: { dir, sourceSha256: ['baseline'] }, onGraphCache: (r) => { report = r } })
  try {
    const outputs = await backend.run(feeds(3))
    assert.ok(report !== undefined, 'the inference thread reports what the cache did')
    return { report, outputs }
  } finally {
    await backend.close()
  }
}

async function uncachedOutputs (): Promise<Record<string, Tensor>> {
  const backend = await createOnnxBackend(ENCODER, { executionProvider: 'cpu', intraOpThreads: 1, thread: 'main' })
  try { return await backend.run(feeds(3)) } finally { await backend.close() }
}

function entryDir (report: GraphCacheReport): string {
  return report.entry
}

test('a miss writes the optimised graph, a hit loads it: the same outputs as without the cache', async (t) => {
  const dir = cacheDir(t)
  const expected = await uncachedOutputs()
  const miss = await openAndRun(dir)
  assert.equal(miss.report.outcome, 'miss')
  const files = readdirSync(entryDir(miss.report)).sort()
  assert.deepEqual(files, ['entry.json', 'graph.onnx', 'graph.onnx.data'], 'the weights go to external data')
  const hit = await openAndRun(dir)
  assert.equal(hit.report.outcome, 'hit')
  assert.equal(hit.report.entry, miss.report.entry)
  for (const outputs of [miss.outputs, hit.outputs]) {
    assert.deepEqual(outputs.latent.dims, expected.latent.dims)
    assert.deepEqual(outputs.latent.data, expected.latent.data, 'bit-identical to the session without the cache')
  }
  assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.')), [], 'no temporary directory is left')
})

test('a damaged entry is found by its size or sha256 and rebuilt; the next start hits again', async (t) => {
  const dir = cacheDir(t)
  const expected = await uncachedOutputs()
  const { report } = await openAndRun(dir)
  const entry = entryDir(report)
  const damages: Array<[string, () => void, RegExp]> = [
    ['truncated data', () => truncateSync(join(entry, 'graph.onnx.data'), 1000), /graph\.onnx\.data has 1000 bytes/],
    ['one byte flipped in the graph', () => { const b = readFileSync(join(entry, 'graph.onnx')); b[b.length >> 1] ^= 1; writeFileSync(join(entry, 'graph.onnx'), b) }, /graph\.onnx has sha256 [0-9a-f]{64}, entry\.json says/],
    ['entry.json cut short', () => { const j = readFileSync(join(entry, 'entry.json')); writeFileSync(join(entry, 'entry.json'), j.subarray(0, 40)) }, /entry\.json is not valid/],
    ['entry.json missing', () => rmSync(join(entry, 'entry.json')), /entry\.json is missing/]
  ]
  for (const [what, damage, reason] of damages) {
    damage()
    const rebuilt = await openAndRun(dir)
    assert.equal(rebuilt.report.outcome, 'rebuilt', what)
    assert.match(rebuilt.report.reason ?? '', reason, what)
    assert.deepEqual(rebuilt.outputs.latent.data, expected.latent.data, `${what}: served from the bundle's graph`)
    assert.equal((await openAndRun(dir)).report.outcome, 'hit', `${what}: the rebuilt entry is valid`)
  }
})

test('a missing directory, a file, or a read-only directory is reported and the session still opens', async (t) => {
  const dir = cacheDir(t)
  for (const [what, path] of [['missing', join(dir, 'absent')], ['a file', join(dir, 'file')]]) {
    if (what === 'a file') writeFileSync(path, 'x')
    const { report, outputs } = await openAndRun(path)
    assert.equal(report.outcome, 'unwritable', what)
    assert.match(report.reason ?? '', /cannot write in/, what)
    assert.equal(outputs.latent.dims[0], 3, `${what}: the session runs`)
  }
  // read-only: a child process, run as nobody when these tests run as root (root may write anywhere)
  const readOnly = join(dir, 'read-only')
  mkdirSync(readOnly)
  chmodSync(dir, 0o755)
  chmodSync(readOnly, 0o555)
  const asOther = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'test/helpers/open-through-graph-cache.ts', ENCODER, readOnly, 'baseline'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], ...asOther })
  const report = JSON.parse(out.trim().split('\n').at(-1) as string) as GraphCacheReport
  assert.equal(report.outcome, 'unwritable')
  assert.match(report.reason ?? '', /EACCES|EROFS|EPERM/)
  assert.deepEqual(readdirSync(readOnly), [])
})

test('replicas writing the same entry at once leave one valid entry and no temporary files', async (t) => {
  const dir = cacheDir(t)
  const run = promisify(execFile)
  const replicas = await Promise.all([0, 1, 2, 3].map(async () => await run(process.execPath, ['--import', 'tsx', 'test/helpers/open-through-graph-cache.ts', ENCODER, dir, 'baseline'], { cwd: REPO })))
  const reports = replicas.map((r) => JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as GraphCacheReport)
  const outcomes = reports.map((r) => r.outcome)
  assert.ok(outcomes.every((o) => o === 'miss' || o === 'hit'), `outcomes ${reports.map((r) => `${r.outcome}${r.reason === undefined ? '' : ` (${r.reason})`}`).join(', ')}`)
  assert.ok(outcomes.includes('miss'))
  const entries = readdirSync(dir)
  assert.equal(entries.length, 1, `one entry, no leftovers: ${entries.join(', ')}`)
  assert.equal((await openAndRun(dir)).report.outcome, 'hit', 'the surviving entry passes its sha256 check')
})

// Replicas racing on one entry, step by step: a fake onnxruntime (instant writes; a load from an entry
// moved aside fails, as onnxruntime's would) and node:fs/promises functions wrapped so that another
// replica's move lands at a chosen point (the module's named imports follow: syncBuiltinESMExports).
type FsCall = (...args: unknown[]) => Promise<unknown>
type FsName = 'readFile' | 'lstat' | 'rename' | 'stat'

async function fakeCreate (path: string, o: { optimizedModelFilePath?: string }): Promise<never> {
  if (o.optimizedModelFilePath !== undefined) writeFileSync(o.optimizedModelFilePath, readFileSync(ENCODER))
  else readFileSync(path)
  return { release: async () => {} } as never
}
const RACE = { sourceSha256: ['race'] }
const openRacing = async (dir: string): Promise<GraphCacheReport> => (await openThroughGraphCache(ENCODER, { dir, ...RACE }, {}, 'cpu', fakeCreate)).report

/** marks the other replica's entry (an inode number may be reused by an entry written after one was deleted) */
const BY_OTHER = 'by the other replica'

/**
 * A cache directory with, when asked, another replica's complete entry staged beside it (`other`, to
 * rename in; marked BY_OTHER in its entry.json, which the check does not read) and a damaged entry in place.
 */
async function raceDir (t: Parameters<typeof cacheDir>[0], { damaged, staged }: { damaged: boolean, staged: boolean }): Promise<{ dir: string, entry: string, other: string }> {
  const written = await openRacing(cacheDir(t))
  const dir = cacheDir(t)
  const entry = join(dir, basename(written.entry))
  const other = join(dir, '.other-replica')
  if (staged) {
    cpSync(written.entry, other, { recursive: true })
    const json = JSON.parse(readFileSync(join(other, 'entry.json'), 'utf8')) as Record<string, unknown>
    writeFileSync(join(other, 'entry.json'), JSON.stringify({ ...json, created_at: BY_OTHER }))
  }
  if (damaged) { cpSync(written.entry, entry, { recursive: true }); writeFileSync(join(entry, 'graph.onnx'), 'damaged') }
  return { dir, entry, other }
}

async function withFs<T> (wrap: Partial<Record<FsName, (original: FsCall) => FsCall>>, body: () => Promise<T>): Promise<T> {
  const fs = fsPromises as unknown as Record<FsName, FsCall>
  const original = { readFile: fs.readFile, lstat: fs.lstat, rename: fs.rename, stat: fs.stat }
  for (const [name, make] of Object.entries(wrap) as Array<[FsName, (o: FsCall) => FsCall]>) fs[name] = make(original[name])
  syncBuiltinESMExports()
  try { return await body() } finally { Object.assign(fs, original); syncBuiltinESMExports() }
}

function isValidEntry (entry: string): boolean { return existsSync(join(entry, 'entry.json')) && readFileSync(join(entry, 'graph.onnx')).length > 100 }

test('an entry renamed into place between two of an opener\'s looks is used, not judged damaged', async (t) => {
  // Found by CI (outcomes miss, miss, rebuilt, unwritable): an opener read no entry.json (no entry
  // yet), another replica renamed its complete entry into place, and the first then found the
  // directory, judged it an entry without entry.json and moved it aside. Here the rename lands right
  // after the opener's first look at the entry, whichever call that is.
  const { dir, entry, other } = await raceDir(t, { damaged: false, staged: true })
  let renamed = false
  const after = (original: FsCall): FsCall => async (path, ...rest) => {
    try { return await original(path, ...rest) } finally {
      if (!renamed && typeof path === 'string' && path.startsWith(entry)) { renamed = true; renameSync(other, entry) }
    }
  }
  const report = await withFs({ readFile: after, lstat: after }, async () => await openRacing(dir))
  assert.ok(renamed, 'the other replica\'s rename happened during the open')
  assert.ok(['miss', 'hit'].includes(report.outcome), `${report.outcome}: ${report.reason ?? ''}`)
  assert.deepEqual(readdirSync(dir), [basename(entry)], 'the entry stays, nothing left over')
})

test('a stale judgement never removes a fresh entry: the damaged one is replaced between an opener\'s looks', async (t) => {
  // The opener sees the damaged entry; a replica moves it aside; the opener reads no entry.json (a
  // stale "damaged"); another replica renames a valid entry in; the opener must not move that one
  const { dir, entry, other } = await raceDir(t, { damaged: true, staged: true })
  let step = 0
  const report = await withFs({
    lstat: (original) => async (path, ...rest) => {
      try { return await original(path, ...rest) } finally {
        if (step === 0 && path === entry) { step = 1; renameSync(entry, join(dir, '.gone')); rmSync(join(dir, '.gone'), { recursive: true }) }
      }
    },
    readFile: (original) => async (path, ...rest) => {
      try { return await original(path, ...rest) } finally {
        if (step === 1 && path === join(entry, 'entry.json')) { step = 2; renameSync(other, entry) }
      }
    }
  }, async () => await openRacing(dir))
  assert.equal(step, 2, 'both replicas\' moves happened during the open')
  assert.notEqual(report.outcome, 'unwritable', report.reason)
  assert.match(readFileSync(join(entry, 'entry.json'), 'utf8'), new RegExp(BY_OTHER), 'the replica\'s fresh entry is the one in place, not moved aside and replaced')
  assert.ok(isValidEntry(entry))
  assert.deepEqual(readdirSync(dir), [basename(entry)], 'nothing left over')
})

test('two openers finding one damaged entry: the one whose rename lands late puts the other\'s fresh entry back', { timeout: 30_000 }, async (t) => {
  // Opener 1 judges the entry damaged and starts moving it aside, but its rename is held; opener 2
  // judges it too, moves it aside, writes and renames its fresh entry in; only then does opener 1's
  // rename run, and it moves the fresh entry: it must find the identity changed and put it back
  const { dir, entry } = await raceDir(t, { damaged: true, staged: false }) // both openers write their own
  let holding!: () => void
  const held = new Promise<void>((resolve) => { holding = resolve })
  let release!: () => void
  const released = new Promise<void>((resolve) => { release = resolve })
  let movesAside = 0
  let putBack = false
  const reports = await withFs({
    rename: (original) => async (from, to, ...rest) => {
      if (from === entry && basename(to as string).startsWith('.stale-') && ++movesAside === 1) { holding(); await released }
      if (to === entry && basename(from as string).startsWith('.stale-')) putBack = true
      const result = await original(from, to, ...rest)
      if (to === entry && basename(from as string).startsWith('.tmp-') && movesAside === 2) release()
      return result
    }
  }, async () => {
    const first = openRacing(dir)
    await held
    return await Promise.all([first, openRacing(dir)])
  })
  assert.ok(putBack, 'opener 1 moved the fresh entry and put it back')
  assert.deepEqual(reports.map((r) => r.outcome), ['rebuilt', 'rebuilt'], reports.map((r) => r.reason).join('; '))
  assert.ok(isValidEntry(entry), 'the fresh entry is in place')
  assert.deepEqual(readdirSync(dir), [basename(entry)], 'nothing left over')
})

test('a damaged entry that cannot be moved aside is never served: the start builds from the graph', async (t) => {
  // e.g. an entry in a read-only lower layer of an overlay filesystem (rename: EXDEV)
  const { dir, entry } = await raceDir(t, { damaged: true, staged: false })
  const loaded: string[] = []
  const create = async (path: string, o: { optimizedModelFilePath?: string }): Promise<never> => {
    if (o.optimizedModelFilePath === undefined) loaded.push(path)
    return await fakeCreate(path, o)
  }
  const exdev = Object.assign(new Error('EXDEV: cross-device link not permitted'), { code: 'EXDEV' })
  const { report } = await withFs({
    rename: (original) => async (from, to, ...rest) => {
      if (from === entry) throw exdev
      return await original(from, to, ...rest)
    }
  }, async () => await openThroughGraphCache(ENCODER, { dir, ...RACE }, {}, 'cpu', create))
  assert.equal(report.outcome, 'unwritable')
  assert.match(report.reason ?? '', /entry in place is not valid \(graph\.onnx has 7 bytes/)
  assert.deepEqual(loaded, [ENCODER], 'served from the bundle\'s graph, never from the damaged entry')
  assert.deepEqual(readdirSync(dir), [basename(entry)], 'our copy is dropped, nothing left over')
})

test('an entry checked while a replica has it aside for a moment is put back, not removed', async (t) => {
  // a replica acting on a stale judgement renames the valid entry aside and back; our read of its
  // entry.json lands in between ("missing"), with the identity of that same directory
  const { dir, entry, other } = await raceDir(t, { damaged: false, staged: true })
  renameSync(other, entry)
  let moments = 0
  const report = await withFs({
    readFile: (original) => async (path, ...rest) => {
      if (moments > 0 || path !== join(entry, 'entry.json')) return await original(path, ...rest)
      moments++
      renameSync(entry, join(dir, '.held'))
      try { return await original(path, ...rest) } finally { renameSync(join(dir, '.held'), entry) }
    }
  }, async () => await openRacing(dir))
  assert.equal(moments, 1)
  assert.notEqual(report.outcome, 'unwritable', report.reason)
  assert.match(readFileSync(join(entry, 'entry.json'), 'utf8'), new RegExp(BY_OTHER), 'the valid entry stays')
  assert.deepEqual(readdirSync(dir), [basename(entry)], 'nothing left over')
})

test('a file vanishing while the entry in place is checked ends in a session, never a throw', async (t) => {
  // our rename finds the name taken; while we check the entry in place, a replica moves it away
  const { dir, entry, other } = await raceDir(t, { damaged: false, staged: true })
  let moved = false
  const report = await withFs({
    rename: (original) => async (from, to, ...rest) => {
      if (to === entry && basename(from as string).startsWith('.tmp-') && existsSync(other)) renameSync(other, entry) // a replica's copy first
      return await original(from, to, ...rest)
    },
    lstat: (original) => async (path, ...rest) => {
      try { return await original(path, ...rest) } finally {
        if (!moved && path === join(entry, 'graph.onnx')) { moved = true; renameSync(entry, join(dir, '.gone')) }
      }
    }
  }, async () => await openRacing(dir))
  assert.ok(moved)
  rmSync(join(dir, '.gone'), { recursive: true, force: true })
  assert.ok(['miss', 'unwritable'].includes(report.outcome), `${report.outcome}: ${report.reason ?? ''}`)
})

test('a write sweeps leftovers older than an hour, name by name: one vanishing meanwhile stops nothing', async (t) => {
  const dir = cacheDir(t)
  const hoursAgo = new Date(Date.now() - 2 * 3600_000)
  for (const name of ['.tmp-old1', '.tmp-old2', '.stale-old3', '.tmp-young']) {
    mkdirSync(join(dir, name))
    writeFileSync(join(dir, name, 'graph.onnx'), 'x')
    if (!name.endsWith('young')) utimesSync(join(dir, name), hoursAgo, hoursAgo)
  }
  let vanished = ''
  const report = await withFs({
    stat: (original) => async (path, ...rest) => {
      // the first old name the sweep looks at is swept by another replica just before (readdir's order is the filesystem's)
      if (vanished === '' && typeof path === 'string' && /-old\d$/.test(path)) { vanished = path; rmSync(path, { recursive: true }) }
      return await original(path, ...rest)
    }
  }, async () => {
    const r = await openRacing(dir)
    for (let i = 0; i < 250 && readdirSync(dir).some((n) => /-old\d$/.test(n)); i++) await new Promise((resolve) => setTimeout(resolve, 20))
    return r
  })
  assert.notEqual(vanished, '', 'one name vanished during the sweep')
  assert.equal(report.outcome, 'miss')
  assert.deepEqual(readdirSync(dir).sort(), ['.tmp-young', basename(report.entry)].sort(), 'the old ones swept, the young one (a writer at work) kept')
})

test('the key changes with the graph, its external data, onnxruntime, the level, the provider and the CPU flags', () => {
  const base = { sourceSha256: ['a'.repeat(64)], ortVersion: '1.23.2', optimizationLevel: 'all', executionProvider: 'cpu', cpuFlags: 'x64 avx avx2 fma' }
  const variants = [
    { ...base, sourceSha256: ['b'.repeat(64)] },
    { ...base, sourceSha256: ['a'.repeat(64), 'c'.repeat(64)] },
    { ...base, ortVersion: '1.24.0' },
    { ...base, optimizationLevel: 'extended' },
    { ...base, executionProvider: 'cuda' },
    { ...base, cpuFlags: 'x64 avx avx2 avx512f fma' }
  ]
  const keys = new Set([base, ...variants].map(graphCacheKey))
  assert.equal(keys.size, 1 + variants.length)
  assert.equal(graphCacheKey({ ...base }), graphCacheKey(base), 'and only with them')
  // the flags onnxruntime's kernels dispatch on, sorted; the rest (hypervisor, tsc ...) ignored
  const x86 = 'processor\t: 0\nflags\t\t: fpu sse2 hypervisor avx2 fma avx sse4_1 avx512_vnni tsc smep\n\nprocessor\t: 1\nflags\t\t: fpu sse2 avx2\n'
  assert.match(cpuFlags(x86), / avx avx2 avx512_vnni fma sse2 sse4_1$/)
  assert.equal(cpuFlags(x86.replace('hypervisor ', '').replace(' tsc smep', '')), cpuFlags(x86))
  assert.notEqual(cpuFlags(x86.replace(' avx512_vnni', '')), cpuFlags(x86))
  assert.match(cpuFlags('processor\t: 0\nFeatures\t: fp asimd evtstrm aes asimddp sve i8mm\n'), / asimd asimddp i8mm sve$/)
})

test('a session that fails to load from a valid-looking entry is rebuilt from the graph; one failure is tried again', async (t) => {
  const dir = cacheDir(t)
  const { report } = await openAndRun(dir)
  const failingEntryLoads = (failures: number) => async (path: string, options: Parameters<typeof openThroughGraphCache>[2]) => {
    if (path.startsWith(report.entry) && failures-- > 0) throw new Error('simulated load failure')
    const ort = await import('onnxruntime-node')
    return await ort.InferenceSession.create(path, options)
  }
  const open = async (failures: number): Promise<GraphCacheReport> => {
    const opened = await openThroughGraphCache(ENCODER, { dir, sourceSha256: ['baseline'] }, { graphOptimizationLevel: 'all', executionProviders: ['cpu'] }, 'cpu', failingEntryLoads(failures))
    await opened.session.release()
    return opened.report
  }
  assert.equal((await open(1)).outcome, 'hit', 'a load failing once (the entry aside for a moment) is tried again')
  const rebuilt = await open(2)
  assert.equal(rebuilt.outcome, 'rebuilt')
  assert.equal(rebuilt.entry, report.entry)
  assert.match(rebuilt.reason ?? '', /could not load the cached graph \(simulated load failure\)/)
})

test('on a miss the entry is written by a session without prepacking, released, and the session served is loaded from the entry', async (t) => {
  const dir = cacheDir(t)
  const ort = await import('onnxruntime-node')
  const calls: Array<{ path: string, level?: string, writes: boolean, prepacking: string, released: boolean }> = []
  const spy = async (path: string, options: Parameters<typeof openThroughGraphCache>[2]) => {
    const session = await ort.InferenceSession.create(path, options)
    const call = { path, level: options.graphOptimizationLevel, writes: options.optimizedModelFilePath !== undefined, prepacking: (options.extra as Record<string, string> | undefined)?.['session.disable_prepacking'] === '1' ? 'off' : 'on', released: false }
    calls.push(call)
    const release = session.release.bind(session)
    session.release = async () => { call.released = true; await release() }
    return session
  }
  const opened = await openThroughGraphCache(ENCODER, { dir, sourceSha256: ['baseline'] }, { graphOptimizationLevel: 'all', executionProviders: ['cpu'] }, 'cpu', spy)
  assert.equal(opened.report.outcome, 'miss')
  assert.deepEqual(calls, [
    { path: ENCODER, level: 'all', writes: true, prepacking: 'off', released: true },
    { path: join(opened.report.entry, 'graph.onnx'), level: 'disabled', writes: false, prepacking: 'on', released: false }
  ])
  await opened.session.release()
})

const NO_PYTHON = existsSync(PYTHON) ? false : `${PYTHON} is missing: npm test (scripts/test-all.sh) creates it`

test('a format-2 bundle whose weights are external data loads through the cache: miss, then hit, same outputs, logged', { skip: NO_PYTHON, timeout: 300_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'clmae-ort-cache-f2-'))
  t.after(() => rmSync(root, { recursive: true, force: true }))
  const models = join(root, 'models')
  const bundle = join(models, 'mae-f2-external')
  const manifest = writeEncoderOnlyBundle(join(MODELS_DIR, BASELINE_MODEL), bundle, 'mae-f2-external')
  // the same encoder re-saved with its weights in encoder.onnx.data, as clmae.export writes a > 2 GB graph
  execFileSync(PYTHON, ['-c', 'import onnx, sys; onnx.save_model(onnx.load(sys.argv[1]), sys.argv[2], save_as_external_data=True, all_tensors_to_one_file=True, location="encoder.onnx.data", size_threshold=1024)', ENCODER, join(bundle, 'encoder.onnx')])
  const file = async (name: string) => ({ file: name, bytes: readFileSync(join(bundle, name)).length, sha256: await sha256File(join(bundle, name)) })
  const external: ManifestV2 = { ...manifest, graphs: { encoder: { ...manifest.graphs.encoder, ...await file('encoder.onnx'), external_data: [await file('encoder.onnx.data')] } } }
  writeFileSync(join(bundle, 'manifest.json'), JSON.stringify(external, null, 2) + '\n')
  const dir = cacheDir(t)

  const load = async (ortCacheDir: string) => {
    const logs: Array<{ cache?: string, reason?: string }> = []
    const logger = { info: (o: object) => logs.push(o), warn: (o: object) => logs.push(o), error: (o: object) => logs.push(o) }
    const config = loadConfig({ env: {}, overrides: { modelsDir: models, defaultModel: 'mae-f2-external', ortCacheDir, ortIntraOpThreads: 1 } })
    const registry = await ModelRegistry.load(config, { logger: logger as never })
    try {
      const { outputs } = await registry.get().run('encoder', feeds(2))
      return { outcomes: logs.map((l) => l.cache).filter((c) => c !== undefined), outputs }
    } finally {
      await registry.close()
    }
  }
  const plain = await load('')
  assert.deepEqual(plain.outcomes, [], 'no cache, no cache log')
  const miss = await load(dir)
  const hit = await load(dir)
  assert.deepEqual([miss.outcomes, hit.outcomes], [['miss'], ['hit']])
  assert.deepEqual(miss.outputs.latent.data, plain.outputs.latent.data)
  assert.deepEqual(hit.outputs.latent.data, plain.outputs.latent.data)
  // the key covers the external data: the same graph file with other weights is another entry
  const other = await openThroughGraphCache(join(bundle, 'encoder.onnx'), { dir, sourceSha256: [external.graphs.encoder.sha256, 'f'.repeat(64)] }, { graphOptimizationLevel: 'all', executionProviders: ['cpu'] }, 'cpu')
  await other.session.release()
  assert.equal(other.report.outcome, 'miss')
})

/**
 * A disk cache of onnxruntime's optimised graphs (`--ort-cache-dir`), so a restart skips the graph
 * optimisations ('all' level: constant folding, attention/LayerNorm/GELU fusions, NCHWc layout).
 *
 * onnxruntime's offline mode: a session created with `optimizedModelFilePath` writes the graph it
 * optimised; a later session loads that file with every optimisation disabled (onnxruntime docs,
 * "Graph Optimizations", Online/Offline Mode). Such a file is only valid for the same onnxruntime,
 * execution provider, level and hardware: with layout optimisations on, the saved graph may hold
 * kernels for this CPU's instruction set (onnxruntime warns so when it writes one), hence the key:
 *   sha256(graph sha256 + its external data's sha256, onnxruntime version, level, provider, CPU flags)
 *
 * On a miss a first session (no weight prepacking) only writes the entry and is released; the session
 * served is then loaded from the entry, as after a restart, which holds the weights once.
 * An entry is a directory `<dir>/<key>/`: graph.onnx, graph.onnx.data (every initializer of 1 KiB or
 * more: a graph past protobuf's 2 GB limit cannot be written in one file, and weights outside the
 * protobuf need no copy inside it) and entry.json with each file's size and sha256. It is written in
 * a private `.tmp-*` directory and renamed into place, so replicas sharing the directory never see a
 * half-written entry: the first rename wins, the others find the name taken and drop their copy.
 * On load every file is checked against entry.json; a mismatch (truncated, corrupt, missing) or a
 * session that fails to load from it rebuilds the entry from the bundle's graph; the bad entry is moved
 * aside only while it is still the directory judged (device, inode, mtime), so a replica acting on a
 * stale judgement does not remove another's fresh entry (at worst it has it aside for the length of a
 * rename and puts it back; a load meeting that moment is tried once more), and an entry that cannot
 * be moved aside is never served: that start builds from the graph. A directory that is
 * missing or not writable is reported, never fatal: the session is then built from the graph as
 * without the cache. No fsync: a machine crash between write and flush leaves an entry whose sha256
 * does not match, which the next start rebuilds.
 * The directory is trusted like the models directory (the hashes catch damage, not an attacker).
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { chmod, lstat, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { arch, cpus } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout } from 'node:timers/promises'
import * as ort from 'onnxruntime-node'
import { sha256File } from '../bundles/bundle-reader.js'

/** What the session needs to use the cache: plain data (it crosses to the inference thread). */
export interface GraphCacheSpec {
  dir: string
  /** sha256 of the bundle's graph file, then of each of its external-data files (the manifest's) */
  sourceSha256: string[]
}

export type GraphCacheOutcome = 'hit' | 'miss' | 'rebuilt' | 'unwritable'

/** What happened, for the main thread to log. */
export interface GraphCacheReport {
  outcome: GraphCacheOutcome
  /** the entry directory */
  entry: string
  /** why the entry was rebuilt, or why nothing was written */
  reason?: string
  /** session creation through the cache, hashing and writing included */
  openMs: number
}

export interface GraphCacheKeyParts {
  sourceSha256: string[]
  ortVersion: string
  optimizationLevel: string
  executionProvider: string
  cpuFlags: string
}

const GRAPH_FILE = 'graph.onnx'
const DATA_FILE = 'graph.onnx.data'
const ENTRY_FILE = 'entry.json'
const EXTERNALISE_MIN_BYTES = 1024
/** leftovers of a writer that died mid-write are removed after this long by the next start that writes an entry (a write takes seconds) */
const LEFTOVER_AGE_MS = 60 * 60 * 1000
const RETRY_LOAD_MS = 50

/**
 * The CPU features onnxruntime's kernels dispatch on (MLAS picks SSE/AVX2/AVX-512/VNNI/AMX code on
 * x86, NEON/SVE/dot-product/i8mm on Arm), from /proc/cpuinfo's flags (x86) or Features (Arm) line,
 * sorted. Elsewhere, the architecture and CPU model name.
 */
export function cpuFlags (cpuinfo?: string): string {
  let text = cpuinfo
  if (text === undefined) {
    try { text = readFileSync('/proc/cpuinfo', 'utf8') } catch { return `${arch()} ${cpus()[0]?.model ?? 'unknown'}` }
  }
  const line = /^(?:flags|Features)\s*:(.*)$/m.exec(text)?.[1] ?? ''
  const relevant = line.trim().split(/\s+/).filter((f) => /^(sse|ssse|avx|fma|f16c|amx|vnni|asimd|sve|i8mm|bf16|dotprod|fphp|fp16)|^sme\d*$/.test(f))
  return `${arch()} ${[...new Set(relevant)].sort().join(' ')}`
}

/** The entry name: sha256 over every part that decides whether an optimised graph is valid here. */
export function graphCacheKey (parts: GraphCacheKeyParts): string {
  return createHash('sha256').update(JSON.stringify([parts.sourceSha256, parts.ortVersion, parts.optimizationLevel, parts.executionProvider, parts.cpuFlags])).digest('hex')
}

let thisCpu: string | undefined

type CreateSession = (path: string, options: ort.InferenceSession.SessionOptions) => Promise<ort.InferenceSession>

/**
 * Creates the session of `modelPath` through the cache: from the entry when it is valid (optimisations
 * disabled); otherwise onnxruntime first writes the entry from the graph with `options`, and the
 * session is loaded from it; without a usable directory, from the graph with `options`.
 */
export async function openThroughGraphCache (modelPath: string, cache: GraphCacheSpec, options: ort.InferenceSession.SessionOptions, executionProvider: string,
  create: CreateSession = async (path, o) => await ort.InferenceSession.create(path, o)): Promise<{ session: ort.InferenceSession, report: GraphCacheReport }> {
  const started = performance.now()
  const key = graphCacheKey({
    sourceSha256: cache.sourceSha256,
    ortVersion: ort.env.versions.node ?? ort.env.versions.common,
    optimizationLevel: options.graphOptimizationLevel ?? 'all',
    executionProvider,
    cpuFlags: (thisCpu ??= cpuFlags())
  })
  const entry = join(cache.dir, key)
  const report = (outcome: GraphCacheOutcome, reason?: string): GraphCacheReport => ({ outcome, entry, reason, openMs: performance.now() - started })

  // a load from the entry is tried once more after a pause: a replica acting on a stale judgement may
  // have had it aside for a moment (moveAside puts it back)
  const load = async (): Promise<ort.InferenceSession> => await create(join(entry, GRAPH_FILE), { ...options, graphOptimizationLevel: 'disabled' })
  const loadEntry = async (): Promise<ort.InferenceSession> => {
    try { return await load() } catch { await setTimeout(RETRY_LOAD_MS); return await load() }
  }

  let invalid: string | undefined
  const { problem, id } = await checkEntry(entry)
  if (problem === undefined) {
    try {
      return { session: await loadEntry(), report: report('hit') }
    } catch (error) {
      invalid = `onnxruntime could not load the cached graph (${(error as Error).message})`
    }
  } else if (problem !== 'absent') {
    invalid = problem
  }
  if (invalid !== undefined && id !== undefined) await moveAside(cache.dir, entry, id, problem !== undefined)

  let tmp: string
  try {
    if (!(await stat(cache.dir)).isDirectory()) throw new Error('not a directory')
    tmp = await mkdtemp(join(cache.dir, '.tmp-'))
    await chmod(tmp, 0o755) // mkdtemp's 0700 would hide the entry from replicas running as another user
  } catch (error) {
    const session = await create(modelPath, options)
    return { session, report: report('unwritable', withInvalid(invalid, `cannot write in ${cache.dir} (${(error as Error).message}); the graph is optimised at every start`)) }
  }
  try {
    try {
      // a session only to write the entry: no prepacking (it is not part of the written graph), released at once
      const writer = await create(modelPath, {
        ...options,
        optimizedModelFilePath: join(tmp, GRAPH_FILE),
        extra: { ...options.extra, 'session.disable_prepacking': '1', 'session.optimized_model_external_initializers_file_name': DATA_FILE, 'session.optimized_model_external_initializers_min_size_in_bytes': String(EXTERNALISE_MIN_BYTES) }
      })
      await writer.release()
    } catch (writeError) {
      // the graph or only the write failed (a full disk): without the write, a failure is the graph's own
      const session = await create(modelPath, options)
      return { session, report: report('unwritable', withInvalid(invalid, `onnxruntime could not write the optimised graph (${(writeError as Error).message})`)) }
    }
    try {
      await writeEntry(tmp, key)
      await rename(tmp, entry)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') {
        const session = await create(modelPath, options)
        return { session, report: report('unwritable', withInvalid(invalid, `cannot write ${entry} (${(error as Error).message})`)) }
      }
      // the name is taken: a replica renamed its copy first (same key, same content), or a bad entry
      // could not be moved aside (another filesystem's layer: EXDEV): theirs is loaded only if it checks
      let inPlace = (await checkEntry(entry)).problem
      // gone meanwhile (a replica had it aside for a moment): ours goes in instead, once
      if (inPlace === 'absent') inPlace = await rename(tmp, entry).then(() => undefined, async () => (await checkEntry(entry)).problem)
      if (inPlace !== undefined) {
        const session = await create(modelPath, options)
        return { session, report: report('unwritable', withInvalid(invalid, `the entry in place is not valid (${inPlace}) and cannot be replaced`)) }
      }
    }
    void sweepLeftovers(cache.dir)
    const served = await identity(entry) // ours or the replica's that renamed first
    // served from the entry, as after a restart: a session built from the bundle's graph at the 'all'
    // level holds the weights 1.4-1.5 times, one loaded from the entry 1.1-1.25 times (README, Benchmarks)
    try {
      const session = await loadEntry()
      return { session, report: invalid === undefined ? report('miss') : report('rebuilt', invalid) }
    } catch (error) {
      if (served !== undefined) await moveAside(cache.dir, entry, served, false)
      const session = await create(modelPath, options)
      return { session, report: report('unwritable', withInvalid(invalid, `the optimised graph onnxruntime wrote does not load (${(error as Error).message})`)) }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

function withInvalid (invalid: string | undefined, reason: string): string {
  return invalid === undefined ? reason : `the entry was invalid (${invalid}) and ${reason}`
}

interface EntryFile { file: string, bytes: number, sha256: string }

/**
 * Which directory holds the name now: device, inode and mtime (an inode freed by a deleted entry may
 * be reused by the next one written; its mtime, from the files written into it, differs). A rename
 * within the cache directory changes none of them on ext4, xfs, btrfs, tmpfs or overlayfs (checked by
 * review); where one did, a bad entry would be put back and each start would build from the graph.
 */
async function identity (path: string): Promise<string | undefined> {
  try {
    const s = await lstat(path, { bigint: true })
    return `${s.dev}:${s.ino}:${s.mtimeNs}`
  } catch { return undefined }
}

/**
 * The entry's problem (undefined when it is complete and every file matches its sha256; 'absent'; or
 * what is wrong) and the identity of the directory judged, so that only that one is moved aside.
 * The directory is looked at first, then its entry.json: the other order could read no entry.json,
 * then find a replica's entry renamed in meanwhile and judge it damaged (seen in CI). A judgement can
 * still be stale (another replica may move the entry aside and rename a fresh one in between the
 * looks): moveAside checks the identity, so a stale judgement does not remove a fresh entry.
 */
async function checkEntry (entry: string): Promise<{ problem?: string, id?: string }> {
  const id = await identity(entry)
  if (id === undefined) return { problem: 'absent' }
  return { problem: await entryProblem(entry), id }
}

async function entryProblem (entry: string): Promise<string | undefined> {
  let text: string
  try {
    text = await readFile(join(entry, ENTRY_FILE), 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return `cannot read ${ENTRY_FILE} (${(error as Error).message})`
    return `${ENTRY_FILE} is missing`
  }
  let files: EntryFile[]
  try {
    files = (JSON.parse(text) as { files: EntryFile[] }).files
    if (!Array.isArray(files) || !files.some((f) => f.file === GRAPH_FILE)) throw new Error(`does not list ${GRAPH_FILE}`)
  } catch (error) {
    return `${ENTRY_FILE} is not valid (${(error as Error).message})`
  }
  for (const f of files) {
    if (f.file !== GRAPH_FILE && f.file !== DATA_FILE) return `${ENTRY_FILE} lists an unexpected file ${JSON.stringify(f.file)}`
    const path = join(entry, f.file)
    let bytes: number
    try { bytes = (await lstat(path)).size } catch { return `${f.file} is missing` }
    if (bytes !== f.bytes) return `${f.file} has ${bytes} bytes, ${ENTRY_FILE} says ${f.bytes}`
    let sha256: string
    try { sha256 = await sha256File(path) } catch (error) { return `${f.file} cannot be read (${(error as Error).message})` } // moved meanwhile
    if (sha256 !== f.sha256) return `${f.file} has sha256 ${sha256}, ${ENTRY_FILE} says ${f.sha256}`
  }
  return undefined
}

/** entry.json of what onnxruntime wrote in `tmp`; written last, so an entry with one is complete. */
async function writeEntry (tmp: string, key: string): Promise<void> {
  const files: EntryFile[] = []
  for (const file of [GRAPH_FILE, DATA_FILE]) {
    const path = join(tmp, file)
    let bytes: number
    try { bytes = (await lstat(path)).size } catch { if (file === GRAPH_FILE) throw new Error(`onnxruntime wrote no ${GRAPH_FILE}`); continue }
    files.push({ file, bytes, sha256: await sha256File(path) })
  }
  await writeFile(join(tmp, ENTRY_FILE), JSON.stringify({ key, onnxruntime: ort.env.versions.node, created_at: new Date().toISOString(), files }, null, 2) + '\n')
}

/**
 * Renames the entry judged bad (`judged`: its identity) out of the way, atomically, so no reader sees
 * it half-deleted, then deletes it. Only that directory: when a replica has meanwhile replaced it with
 * a fresh entry, nothing is moved, or (a replacement between the check and the rename) the fresh one
 * is put back, as is an entry judged by its files whose files check once aside; if yet another took
 * the name by then, that one is as good and the aside copy goes.
 */
async function moveAside (dir: string, entry: string, judged: string, recheckFiles: boolean): Promise<void> {
  if (await identity(entry) !== judged) return // gone already, or replaced by a replica's fresh entry
  const aside = join(dir, `.stale-${randomBytes(6).toString('hex')}`)
  try { await rename(entry, aside) } catch { return } // gone meanwhile, or not writable: the write below reports that
  // another directory took the name after the check; or (`recheckFiles`: judged by its files) the same
  // one, judged while a replica had it aside for a moment, whose files check now: put back
  if (await identity(aside) !== judged || (recheckFiles && await entryProblem(aside) === undefined)) {
    try { await rename(aside, entry); return } catch {}
  }
  await rm(aside, { recursive: true, force: true }).catch(() => {})
}

/** Removes old `.tmp-*` and `.stale-*` directories after a write; best effort, name by name (another replica may sweep the same names). */
async function sweepLeftovers (dir: string): Promise<void> {
  let names: string[]
  try { names = await readdir(dir) } catch { return }
  for (const name of names) {
    if (!name.startsWith('.tmp-') && !name.startsWith('.stale-')) continue
    const path = join(dir, name)
    try {
      if (Date.now() - (await stat(path)).mtimeMs > LEFTOVER_AGE_MS) await rm(path, { recursive: true, force: true })
    } catch {} // gone meanwhile, or another user's: leftovers only cost disk
  }
}

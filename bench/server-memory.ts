/**
 * `npm run bench:server-memory [-- --concurrency 8 --rounds 4 --photo 1024x768 --large-side 6000]`
 *
 * Resident memory (RSS) of the compiled server as it runs in production (`node dist/server.js`; run
 * `npm run build` first) with the shipped bundles: after warm-up, the peak under a load of concurrent
 * requests at the request limit (--max-images-per-request JPEG photos each), and the peak while the
 * libuv pool decodes images at the pixel limit in parallel (the admission worst case: --max-image-pixels
 * per image, UV_THREADPOOL_SIZE images at once). Peaks are the kernel's VmHWM, read from /proc, so
 * nothing is missed between samples. The Helm chart's memory request and limit come from these figures.
 *
 * `npm run bench:server-memory -- --sizes models/clmae-vit-mini-p8-64,runs/bench-models/mae-vit-base-p16-224,...`
 * instead serves each listed bundle alone (ViT-B/16 and ViT-L/16: `clmae.export --init-only`, see
 * README) and prints, without the ort graph cache and then with a warm one: the peak RSS of the start
 * (bundle hashing, session creation, warm-up), the RSS idle after it, and the peak under
 * --size-concurrency requests of --size-images photos each; beside the bytes of the bundle's graphs,
 * so a model whose weights were held twice would show it.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import sharp from 'sharp'

const ROOT = new URL('../', import.meta.url).pathname
const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '4' },
    photo: { type: 'string', default: '1024x768' },
    'images-per-request': { type: 'string', default: '32' },
    'large-side': { type: 'string', default: '6000' },
    'models-dir': { type: 'string', default: join(ROOT, 'models') },
    sizes: { type: 'string', default: '' },
    'size-concurrency': { type: 'string', default: '2' },
    'size-images': { type: 'string', default: '4' }
  }
})
const concurrency = Number(values.concurrency)
const rounds = Number(values.rounds)
const perRequest = Number(values['images-per-request'])
const [photoW, photoH] = values.photo.split('x').map(Number)
const largeSide = Number(values['large-side'])

function status (pid: number): { rssMiB: number, hwmMiB: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN)
  return { rssMiB: kib('VmRSS') / 1024, hwmMiB: kib('VmHWM') / 1024 }
}

/** Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs), so each phase has its own peak. */
function resetPeak (pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5')
}

async function photo (seed: number): Promise<Buffer> {
  // smooth gradients plus noise: compresses like a photo, not like a flat colour
  const raw = Buffer.alloc(photoW * photoH * 3)
  let s = seed * 2654435761 >>> 0
  for (let i = 0; i < raw.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0
    raw[i] = ((i % (photoW * 3)) / 12 + (s >>> 27)) & 255
  }
  return await sharp(raw, { raw: { width: photoW, height: photoH, channels: 3 } }).jpeg({ quality: 85 }).toBuffer()
}

/** dist/server.js with `args`, resolved once it logs ready; its pid for /proc. */
async function startServer (args: string[]): Promise<{ child: ReturnType<typeof spawn>, pid: number, url: string }> {
  const db = join(mkdtempSync(join(tmpdir(), 'clmae-bench-memory-')), 'clmae.sqlite')
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'server.js'), '--port', '0', '--log-level', 'info', '--db-path', db, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, CLMAE_API_KEYS: '' } })
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d) => {
      out += String(d)
      const listening = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (listening !== null && out.includes('"msg":"ready"')) resolve(listening[1])
    })
    child.on('exit', (code) => reject(new Error(`dist/server.js exited ${code} (run npm run build first):\n${out}`)))
  })
  child.stdout.resume()
  return { child, pid: child.pid as number, url }
}

async function stopServer (child: ReturnType<typeof spawn>): Promise<void> {
  if (child.exitCode !== null) return
  await new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM') })
}

if (values.sizes !== '') {
  await sizesTable(values.sizes.split(',').map((d) => resolve(d)))
  process.exit(0)
}

const { child, pid, url } = await startServer(['--models-dir', values['models-dir']])

const rows: string[] = []
const idle = status(pid)
rows.push(`| after warm-up (both bundles loaded), idle | ${idle.rssMiB.toFixed(0)} | ${idle.hwmMiB.toFixed(0)} |`)

const photos = await Promise.all(Array.from({ length: perRequest }, async (_, i) => (await photo(i)).toString('base64')))
resetPeak(pid)
let statuses = new Map<number, number>()
for (let r = 0; r < rounds; r++) {
  await Promise.all(Array.from({ length: concurrency }, async () => {
    const response = await fetch(`${url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: photos }) })
    await response.arrayBuffer()
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
  }))
}
const load = status(pid)
rows.push(`| ${concurrency} concurrent requests x ${perRequest} JPEG ${photoW}x${photoH}, ${rounds} rounds (statuses ${JSON.stringify(Object.fromEntries(statuses))}) | ${load.rssMiB.toFixed(0)} | ${load.hwmMiB.toFixed(0)} |`)

// a large image that still fits --max-image-bytes: a gradient PNG compresses well
const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4)
const large = await sharp({ create: { width: largeSide, height: largeSide, channels: 3, background: { r: 120, g: 80, b: 200 } } }).png({ compressionLevel: 9 }).toBuffer()
resetPeak(pid)
statuses = new Map()
await Promise.all(Array.from({ length: pool }, async () => {
  const response = await fetch(`${url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(large) })
  await response.arrayBuffer()
  statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
}))
const worst = status(pid)
rows.push(`| ${pool} concurrent ${largeSide}x${largeSide} PNGs (${(largeSide * largeSide / 1e6).toFixed(0)} Mpixel, ${(large.length / 1024).toFixed(0)} KiB each; statuses ${JSON.stringify(Object.fromEntries(statuses))}) | ${worst.rssMiB.toFixed(0)} | ${worst.hwmMiB.toFixed(0)} |`)

child.kill('SIGTERM')
console.log(`node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), UV_THREADPOOL_SIZE ${pool}, models: ${values['models-dir']}`)
console.log('| phase | RSS at the end, MiB | peak RSS (VmHWM) of the phase, MiB |')
console.log('|---|---|---|')
for (const row of rows) console.log(row)

/** One bundle served alone: peak RSS of the start, idle RSS, peak under a few requests; without the ort cache and with a warm one. */
async function sizesTable (bundles: string[]): Promise<void> {
  const images = await Promise.all(Array.from({ length: Number(values['size-images']) }, async (_, i) => (await photo(i)).toString('base64')))
  const rows: string[] = []
  for (const bundle of bundles) {
    const manifest = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8')) as { name: string, dims: { embed_dim: number, depth: number }, graphs: Record<string, { bytes: number, external_data?: Array<{ bytes: number }> }> }
    const graphBytes = Object.values(manifest.graphs).reduce((sum, g) => sum + g.bytes + (g.external_data ?? []).reduce((a, d) => a + d.bytes, 0), 0)
    const cache = mkdtempSync(join(tmpdir(), 'clmae-bench-memory-cache-'))
    const serve = ['--models-dir', dirname(bundle), '--models', basename(bundle), '--default-model', manifest.name]
    // the first cached start fills the cache (its peak includes writing the optimised graphs), the second reads it
    for (const [mode, extra] of [['off', []], ['cold (written)', ['--ort-cache-dir', cache]], ['warm (read)', ['--ort-cache-dir', cache]]] as const) {
      const server = await startServer([...serve, ...extra])
      const start = status(server.pid)
      resetPeak(server.pid)
      const codes = new Map<number, number>()
      await Promise.all(Array.from({ length: Number(values['size-concurrency']) }, async () => {
        const response = await fetch(`${server.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: images }) })
        await response.arrayBuffer()
        codes.set(response.status, (codes.get(response.status) ?? 0) + 1)
      }))
      const load = status(server.pid)
      await stopServer(server.child)
      rows.push(`| ${manifest.name} (D ${manifest.dims.embed_dim}, depth ${manifest.dims.depth}) | ${(graphBytes / 2 ** 20).toFixed(0)} | ${mode} | ${start.hwmMiB.toFixed(0)} | ${start.rssMiB.toFixed(0)} | ${load.hwmMiB.toFixed(0)} (${JSON.stringify(Object.fromEntries(codes))}) |`)
    }
    rmSync(cache, { recursive: true, force: true })
  }
  console.log(`node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}); dist/server.js, one bundle each, defaults (max batch 4); load: ${values['size-concurrency']} concurrent requests x ${values['size-images']} JPEG ${photoW}x${photoH}`)
  console.log('| bundle | graph files, MiB | ort graph cache | peak RSS of the start, MiB | RSS idle after warm-up, MiB | peak RSS under load, MiB (statuses) |')
  console.log('|---|---|---|---|---|---|')
  for (const row of rows) console.log(row)
}

/**
 * `npm run bench:server-memory [-- --concurrency 8 --rounds 4 --photo 1024x768 --large-side 6000]`
 *
 * Resident memory (RSS) of the compiled server as it runs in production (`node dist/server.js`; run
 * `npm run build` first) with the shipped bundles: after warm-up, the peak under a load of concurrent
 * requests at the request limit (--max-images-per-request JPEG photos each), and the peak while the
 * libuv pool decodes images at the pixel limit in parallel (the admission worst case: --max-image-pixels
 * per image, UV_THREADPOOL_SIZE images at once). Peaks are the kernel's VmHWM, read from /proc, so
 * nothing is missed between samples. The Helm chart's memory request and limit come from these figures.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
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
    'models-dir': { type: 'string', default: join(ROOT, 'models') }
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

const db = join(mkdtempSync(join(tmpdir(), 'clmae-bench-memory-')), 'clmae.sqlite')
const child = spawn(process.execPath, [join(ROOT, 'dist', 'server.js'), '--port', '0', '--log-level', 'info', '--models-dir', values['models-dir'], '--db-path', db], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, CLMAE_API_KEYS: '' } })
const pid = child.pid as number
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

/**
 * `npm run bench:flood [-- --seconds 30 --clients 16 --photos DIR -- <server flags>]`
 *
 * The flood test of the fast-path issue: the server (a child process, default settings unless server
 * flags follow a second `--`) gets, for SECONDS:
 * - CLIENTS clients each sending, one after another, a large JPEG and a large PNG (both <= 8 MiB and
 *   <= 40,000,000 pixels) as raw bodies; a 503 is honoured by waiting its Retry-After;
 * - one client polling /livez every 10 ms;
 * - one client embedding the small photos of ../shared/data/photos one at a time.
 * It prints /livez p50/p99, the small-photo client's share of 200s and its p99, the flood's answers by
 * status and code, and the server's idle and peak RSS (VmRSS / VmHWM of the child). Goals (issue 11):
 * /livez p99 <= 50 ms; small photos >= 95 % 200 with p99 <= 2 s; peak RSS <= idle RSS + the decode
 * budget + 256 MiB; every refusal a 503 DECODE_BUDGET_EXCEEDED (or QUEUE_FULL) with Retry-After.
 * Exit code 1 when a flood answer is neither 200 nor such a 503.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, resolve } from 'node:path'
import sharp from 'sharp'
import { ROOT, benchCommandLine, keepAliveAgent, percentile, post, startServerChild } from './server-child.js'

const { arg, serverArgs } = benchCommandLine()
const SECONDS = Number(arg('seconds', '30'))
const CLIENTS = Number(arg('clients', '16'))
const PHOTOS = resolve(ROOT, arg('photos', '../shared/data/photos'))
const photos = readdirSync(PHOTOS).filter((f) => /\.jpe?g$/i.test(f)).sort().map((f) => readFileSync(join(PHOTOS, f)))

function memory (pid: number): { rss: number, peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rss: kib('VmRSS'), peak: kib('VmHWM') }
}

/** A smooth, noisy-enough image: large in pixels, small enough in bytes. */
async function bigImages (): Promise<{ jpeg: Buffer, png: Buffer }> {
  const width = 8000
  const height = 5000 // 40,000,000 pixels
  const base = sharp({ create: { width: 800, height: 500, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 40 }, background: '#808080' } }).png()
  const small = await base.toBuffer()
  const upscaled = sharp(small).resize(width, height, { kernel: 'cubic' })
  const jpeg = await upscaled.clone().jpeg({ quality: 70 }).toBuffer()
  // the PNG from a coarser source, so that 40 MP of it compresses under 8 MiB
  const coarse = await sharp({ create: { width: 80, height: 50, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 60 }, background: '#808080' } }).png().toBuffer()
  const png = await sharp(coarse).resize(width, height, { kernel: 'cubic' }).png({ compressionLevel: 9, palette: true, colours: 64, dither: 0 }).toBuffer()
  for (const [name, b] of [['jpeg', jpeg], ['png', png]] as const) {
    if (b.length > 8 * 1024 * 1024) throw new Error(`the ${name} flood image has ${b.length} bytes, over 8 MiB`)
  }
  return { jpeg, png }
}

async function main (): Promise<void> {
  const { jpeg, png } = await bigImages()
  const { url, child } = await startServerChild(serverArgs)
  try {
    for (const p of photos.slice(0, 4)) await fetch(`${url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: new Uint8Array(p) })
    const idle = memory(child.pid as number)
    const end = performance.now() + SECONDS * 1000
    const flood = new Map<string, number>()
    const floodAgent = keepAliveAgent(CLIENTS)
    const smallAgent = keepAliveAgent(1)
    let retryAfterMissing = 0
    const floodClient = async (k: number): Promise<void> => {
      for (let i = k; performance.now() < end; i++) {
        const [type, body] = i % 2 === 0 ? ['image/jpeg', jpeg] : ['image/png', png]
        const response = await post(url, '/v1/embeddings', type, body, floodAgent)
        const answer = JSON.parse(response.body.toString()) as { code?: string }
        const key = response.status === 200 ? '200' : `${response.status} ${answer.code ?? ''}`
        flood.set(key, (flood.get(key) ?? 0) + 1)
        if (response.status === 503) {
          const wait = Number(response.headers['retry-after'])
          if (!Number.isFinite(wait)) retryAfterMissing++
          await new Promise((resolve) => setTimeout(resolve, 1000 * (Number.isFinite(wait) ? wait : 1)))
        }
      }
    }
    const livez: number[] = []
    const livezClient = async (): Promise<void> => {
      while (performance.now() < end) {
        const t0 = performance.now()
        await (await fetch(`${url}/livez`)).arrayBuffer()
        livez.push(performance.now() - t0)
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    }
    const small: number[] = []
    let smallOk = 0
    let smallTotal = 0
    const smallClient = async (): Promise<void> => {
      for (let i = 0; performance.now() < end; i++) {
        const t0 = performance.now()
        const response = await post(url, '/v1/embeddings', 'image/jpeg', photos[i % photos.length], smallAgent)
        smallTotal++
        if (response.status === 200) { smallOk++; small.push(performance.now() - t0) }
      }
    }
    let peakSeen = idle.rss
    const sampler = setInterval(() => { peakSeen = Math.max(peakSeen, memory(child.pid as number).rss) }, 100)
    await Promise.all([...Array.from({ length: CLIENTS }, async (_, k) => await floodClient(k)), livezClient(), smallClient()])
    clearInterval(sampler)
    floodAgent.destroy()
    smallAgent.destroy()
    const after = memory(child.pid as number)
    const budgetFlag = serverArgs.indexOf('--decode-budget-bytes')
    const budgetBytes = budgetFlag === -1 ? 512 * 1024 * 1024 : Number(serverArgs[budgetFlag + 1])
    const mib = (b: number): string => (b / 1024 / 1024).toFixed(0)
    console.log(`# flood: ${CLIENTS} clients x (${(jpeg.length / 1024 / 1024).toFixed(1)} MiB JPEG, ${(png.length / 1024 / 1024).toFixed(1)} MiB PNG; 8000 x 5000 px) for ${SECONDS} s; server flags: ${serverArgs.join(' ') || '(defaults)'}`)
    console.log(`# cpu: ${/model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown'}, ${availableParallelism()} cores`)
    console.log(`/livez: ${livez.length} polls, p50 ${percentile(livez, 0.5).toFixed(1)} ms, p99 ${percentile(livez, 0.99).toFixed(1)} ms (goal <= 50)`)
    console.log(`small photos: ${smallOk} of ${smallTotal} answered 200 (${(100 * smallOk / Math.max(1, smallTotal)).toFixed(1)} %, goal >= 95), p99 ${percentile(small, 0.99).toFixed(0)} ms (goal <= 2000)`)
    console.log(`flood answers: ${JSON.stringify(Object.fromEntries(flood))}; 503s without Retry-After: ${retryAfterMissing}`)
    console.log(`server RSS: idle ${mib(idle.rss)} MiB, peak ${mib(Math.max(after.peak, peakSeen))} MiB (goal <= idle + budget ${mib(budgetBytes)} + 256 = ${mib(idle.rss + budgetBytes + 256 * 1024 * 1024)} MiB)`)
    const unexpected = [...flood.keys()].filter((k) => k !== '200' && k !== '503 DECODE_BUDGET_EXCEEDED' && k !== '503 QUEUE_FULL')
    if (unexpected.length > 0 || retryAfterMissing > 0) { console.error(`unexpected flood answers: ${unexpected.join(', ')}`); process.exitCode = 1 }
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM')
  }
}

await main()

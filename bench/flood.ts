/**
 * `npm run bench:flood [-- --seconds 30 --clients 16 --photos DIR -- <server flags>]`
 *
 * The flood test of the fast-path issue: the server (a child process, default settings unless server
 * flags follow a second `--`) gets, for SECONDS:
 * - CLIENTS clients each sending, one after another, large images (each <= 8 MiB and <= 40,000,000
 *   pixels) as raw bodies: a JPEG, an 8-bit PNG, and the ones whose decode holds the most memory per
 *   pixel (src/imaging/decode.ts decodeCostBytes): an EXIF-rotated 16-bit RGBA PNG and a WebP; without
 *   them the RSS goal was met by the cheapest images only. A 503 is honoured by waiting its Retry-After;
 * - one client polling /livez every 10 ms;
 * - one client embedding the small photos of ../shared/data/photos one at a time.
 * It prints /livez p50/p99, the small-photo client's share of 200s and its p99, the flood's answers by
 * status and code, and the server's idle and peak RSS (VmRSS / VmHWM of the child). Goals (issue 11):
 * /livez p99 <= 50 ms; small photos >= 95 % 200 with p99 <= 2 s; peak RSS <= idle RSS + the decode
 * budget + 256 MiB; every refusal a 503 DECODE_BUDGET_EXCEEDED (or QUEUE_FULL) with Retry-After.
 * Exit code 1 when a goal is missed, when a flood answer is neither 200 nor such a 503, or when no
 * flood image was served at all (a server refusing the whole flood would meet the other goals vacuously).
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
async function bigImages (): Promise<Array<{ name: string, type: string, body: Buffer }>> {
  const width = 8000
  const height = 5000 // 40,000,000 pixels
  const base = sharp({ create: { width: 800, height: 500, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 40 }, background: '#808080' } }).png()
  const small = await base.toBuffer()
  const upscaled = sharp(small).resize(width, height, { kernel: 'cubic' })
  const jpeg = await upscaled.clone().jpeg({ quality: 70 }).toBuffer()
  // the PNG from a coarser source, so that 40 MP of it compresses under 8 MiB
  const coarse = await sharp({ create: { width: 80, height: 50, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 60 }, background: '#808080' } }).png().toBuffer()
  const png = await sharp(coarse).resize(width, height, { kernel: 'cubic' }).png({ compressionLevel: 9, palette: true, colours: 64, dither: 0 }).toBuffer()
  // the costliest per pixel to decode: sharp copies the whole 16-bit RGBA frame to rotate it; WebP decodes whole RGBA frames
  const flat = sharp({ create: { width, height, channels: 4, background: { r: 120, g: 60, b: 200, alpha: 0.5 } } })
  const png16Rotated = await flat.clone().toColourspace('rgb16').withMetadata({ orientation: 6 }).png({ compressionLevel: 9 }).toBuffer()
  const webp = await sharp(coarse).resize(width, height, { kernel: 'cubic' }).webp({ quality: 50 }).toBuffer()
  const images = [
    { name: 'jpeg', type: 'image/jpeg', body: jpeg },
    { name: 'png', type: 'image/png', body: png },
    { name: 'png 16-bit RGBA, EXIF-rotated', type: 'image/png', body: png16Rotated },
    { name: 'webp', type: 'image/webp', body: webp }
  ]
  for (const image of images) {
    if (image.body.length > 8 * 1024 * 1024) throw new Error(`the ${image.name} flood image has ${image.body.length} bytes, over 8 MiB`)
  }
  return images
}

async function main (): Promise<void> {
  const images = await bigImages()
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
        const image = images[i % images.length]
        const response = await post(url, '/v1/embeddings', image.type, image.body, floodAgent)
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
    console.log(`# flood: ${CLIENTS} clients x (${images.map((m) => `${m.name} ${(m.body.length / 1024 / 1024).toFixed(1)} MiB`).join(', ')}; 8000 x 5000 px) for ${SECONDS} s; server flags: ${serverArgs.join(' ') || '(defaults)'}`)
    console.log(`# cpu: ${/model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown'}, ${availableParallelism()} cores`)
    console.log(`/livez: ${livez.length} polls, p50 ${percentile(livez, 0.5).toFixed(1)} ms, p99 ${percentile(livez, 0.99).toFixed(1)} ms (goal <= 50)`)
    console.log(`small photos: ${smallOk} of ${smallTotal} answered 200 (${(100 * smallOk / Math.max(1, smallTotal)).toFixed(1)} %, goal >= 95), p99 ${percentile(small, 0.99).toFixed(0)} ms (goal <= 2000)`)
    console.log(`flood answers: ${JSON.stringify(Object.fromEntries(flood))}; 503s without Retry-After: ${retryAfterMissing}`)
    console.log(`server RSS: idle ${mib(idle.rss)} MiB, peak ${mib(Math.max(after.peak, peakSeen))} MiB (goal <= idle + budget ${mib(budgetBytes)} + 256 = ${mib(idle.rss + budgetBytes + 256 * 1024 * 1024)} MiB)`)
    const unexpected = [...flood.keys()].filter((k) => k !== '200' && k !== '503 DECODE_BUDGET_EXCEEDED' && k !== '503 QUEUE_FULL')
    const missed = [
      ...(unexpected.length > 0 || retryAfterMissing > 0 ? [`unexpected flood answers: ${unexpected.join(', ')}; 503s without Retry-After: ${retryAfterMissing}`] : []),
      ...((flood.get('200') ?? 0) === 0 ? ['no flood image was served (every one refused): the other goals say nothing'] : []),
      ...(!(percentile(livez, 0.99) <= 50) ? ['/livez p99 > 50 ms'] : []),
      ...(!(smallOk >= 0.95 * smallTotal && smallTotal > 0) ? ['small photos < 95 % 200'] : []),
      ...(!(percentile(small, 0.99) <= 2000) ? ['small photos p99 > 2 s'] : []),
      ...(!(Math.max(after.peak, peakSeen) <= idle.rss + budgetBytes + 256 * 1024 * 1024) ? ['peak RSS over idle + budget + 256 MiB'] : [])
    ]
    console.log(missed.length === 0 ? 'goals: all met' : `goals missed: ${missed.join('; ')}`)
    if (missed.length > 0) process.exitCode = 1
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM')
  }
}

await main()

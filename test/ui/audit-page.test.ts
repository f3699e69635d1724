// End to end: the audit page (src/ui/) in headless Chromium against a real server on 127.0.0.1
// (port 0) with the real default bundle. Chromium is Debian's, driven by playwright-core; when it is
// missing the suite fails with what to install (scripts/install-chromium.sh installs it as root), or
// is skipped, loudly, with CLMAE_SKIP_BROWSER_TESTS=1. Test images are drawn here with sharp.
// Screenshots go to test-artifacts/ui/. Nothing here hard-codes a model output or a sha256: every
// number the page shows is compared with the API's answer for the same bytes.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { chromium, type Browser, type Page } from 'playwright-core'
import sharp from 'sharp'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const SKIP = process.env.CLMAE_SKIP_BROWSER_TESTS === '1'
const ARTIFACTS = 'test-artifacts/ui'
const API_KEY = 'e2e-test-key-0123456789'
const WAIT_MS = 120_000 // generous: a shared CI box under load can take a minute for the first inference

if (SKIP) console.log('# SKIPPED: browser end-to-end tests (CLMAE_SKIP_BROWSER_TESTS=1)')
const opts = { skip: SKIP ? 'CLMAE_SKIP_BROWSER_TESTS=1' : false, timeout: 300_000 }

let browser: Browser
let app: FastifyInstance
let keyedApp: FastifyInstance
let base: string
let keyedBase: string
let page: Page
let dbDir: string

before(async () => {
  if (SKIP) return
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not at ${CHROMIUM}. Run \`bash scripts/install-chromium.sh\` (installs it as root with apt), ` +
      'set CHROMIUM_PATH, or set CLMAE_SKIP_BROWSER_TESTS=1 to skip the browser tests.')
  }
  mkdirSync(ARTIFACTS, { recursive: true })
  dbDir = mkdtempSync(join(tmpdir(), 'clmae-ui-'))
  const config = (overrides: Record<string, unknown>) => loadConfig({ env: {}, overrides: { logLevel: 'warn', host: '127.0.0.1', port: 0, ...overrides } })
  app = await buildApp(config({ dbPath: join(dbDir, 'open.sqlite') }))
  await app.classifierStore.open() // what warmUpApp does at start-up (the page's few-shot panel needs the store)
  await app.listen({ host: '127.0.0.1', port: 0 })
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  keyedApp = await buildApp(config({ dbPath: join(dbDir, 'keyed.sqlite'), apiKeys: [API_KEY] }))
  await keyedApp.classifierStore.open()
  await keyedApp.listen({ host: '127.0.0.1', port: 0 })
  keyedBase = `http://127.0.0.1:${(keyedApp.server.address() as AddressInfo).port}`
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
  })
  page = await newPage(browser)
})

after(async () => {
  await browser?.close()
  await app?.close()
  await keyedApp?.close()
  if (dbDir) rmSync(dbDir, { recursive: true, force: true })
})

/** A page that fails the test on any uncaught script error. */
async function newPage (b: Browser): Promise<Page> {
  const p = await b.newPage({ viewport: { width: 1300, height: 1000 } })
  p.setDefaultTimeout(WAIT_MS) // clicks, navigation and downloads on a loaded CI box too
  p.on('pageerror', (error) => { pageErrors.push(error.message) })
  // A blocked script, style or image would break the page silently: the CSP must allow all it uses.
  p.on('console', (message) => { if (/Content Security Policy/i.test(message.text())) pageErrors.push(message.text()) })
  p.on('dialog', (dialog) => { dialog.accept().catch(() => {}) }) // "Delete classifier …?"
  return p
}
const pageErrors: string[] = []

// --- generated test images -------------------------------------------------------------------

/** Seeded uniform [0, 1), so the images are the same on every run. */
function rng (seed: number): () => number {
  let s = seed >>> 0
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296 }
}

/** width x height RGB from a per-pixel function -> PNG bytes. */
async function png (width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) raw.set(pixel(x, y).map((v) => Math.max(0, Math.min(255, Math.round(v)))), (y * width + x) * 3)
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer()
}

/** A scene with structure the masking module can rank: sky gradient, a sun, a checkered ground. */
function sceneImage (): Promise<Buffer> {
  return png(120, 90, (x, y) => {
    if ((x - 84) ** 2 + (y - 24) ** 2 < 14 ** 2) return [250, 210, 40]
    if (y > 56) return ((x >> 3) + (y >> 3)) % 2 === 0 ? [40, 120, 40] : [200, 190, 150]
    return [90 + y, 140 + y, 230]
  })
}

/** Two visibly different classes: red with horizontal stripes, blue with vertical stripes. */
function classImage (kind: 'red' | 'blue', seed: number): Promise<Buffer> {
  const r = rng(seed)
  const shade = 0.8 + 0.2 * r()
  const period = 6 + Math.floor(r() * 6)
  return png(72, 72, (x, y) => {
    const stripe = ((kind === 'red' ? y : x) % period) < period / 2 ? 1 : 0.55
    const noise = (r() - 0.5) * 30
    return kind === 'red'
      ? [230 * shade * stripe + noise, 40 + noise, 30 + noise]
      : [30 + noise, 60 + noise, 230 * shade * stripe + noise]
  })
}

// --- helpers ---------------------------------------------------------------------------------

async function api (path: string, body: unknown): Promise<{ status: number, json: any }> {
  const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, json: await res.json() }
}

async function setRange (selector: string, value: number): Promise<void> {
  // What a user's drag does: input events while moving, one change on release.
  await page.$eval(selector, (el, v) => {
    const input = el as HTMLInputElement
    input.value = String(v)
    input.dispatchEvent(new Event('input', { bubbles: true }))
    input.dispatchEvent(new Event('change', { bubbles: true }))
  }, value)
}

/** Drops a file on an element: the DataTransfer a drag from the desktop delivers. */
async function dropFile (selector: string, name: string, type: string, bytes: Buffer): Promise<void> {
  const dataTransfer = await page.evaluateHandle(({ name, type, base64 }) => {
    const transfer = new DataTransfer()
    transfer.items.add(new File([Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))], name, { type }))
    return transfer
  }, { name, type, base64: bytes.toString('base64') })
  await page.dispatchEvent(selector, 'dragover', { dataTransfer })
  await page.dispatchEvent(selector, 'drop', { dataTransfer })
}

/** Forgets the last audit state, so waitForAudit waits for the answer to the next action. */
async function resetAuditState (): Promise<void> {
  await page.evaluate(() => { document.body.dataset.auditState = '' })
}

async function waitForAudit (): Promise<string> {
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.auditState ?? ''), null, { timeout: WAIT_MS })
  return page.$eval('body', (b) => (b as HTMLElement).dataset.auditState ?? '')
}

// --- the tests, in the order a user works --------------------------------------------------

test('the page loads and lists the models from GET /v1/models', opts, async () => {
  await page.goto(base + '/')
  await page.waitForSelector('body[data-models-loaded="true"]', { timeout: WAIT_MS })
  const models = await (await fetch(base + '/v1/models')).json()
  const options = await page.$$eval('#model-select option', (os) => os.map((o) => (o as HTMLOptionElement).value))
  assert.deepEqual(options, models.data.map((m: any) => m.id))
  const defaultModel = models.data.find((m: any) => m.default)
  assert.equal(await page.inputValue('#model-select'), defaultModel.id)
  assert.equal(defaultModel.method, 'clmae', 'the default bundle has a masking module')
  // The slider starts at the bundle's training mask ratio.
  assert.equal(Number(await page.inputValue('#mask-ratio')), defaultModel.manifest.mask_ratio)
  await page.screenshot({ path: join(ARTIFACTS, '01-loaded.png'), fullPage: true })
})

test('an image goes in: the keep scores shown equal the API\'s, the heatmap is not uniform, the panels appear', opts, async () => {
  const image = await sceneImage()
  await dropFile('#audit-drop', 'scene.png', 'image/png', image) // a drop, as from a file manager
  assert.equal(await waitForAudit(), 'done')
  const model = await page.inputValue('#model-select')
  const ratio = Number(await page.inputValue('#mask-ratio'))

  // Keep scores: the page's grid (data attribute and table) equals the API's for the same bytes.
  const shown = JSON.parse(await page.getAttribute('#keep-score-canvas', 'data-keep-scores') ?? 'null')
  const direct = await api('/v1/mask-maps', { input: image.toString('base64'), model, mask_ratio: ratio })
  assert.equal(direct.status, 200)
  assert.deepEqual(shown, direct.json.keep_score)
  const tableValues = await page.$$eval('#keep-score-table td[data-keep-score]', (tds) => tds.map((td) => Number((td as HTMLElement).dataset.keepScore)))
  assert.deepEqual(tableValues, direct.json.keep_score.flat())
  const flat: number[] = direct.json.keep_score.flat()
  assert.equal(flat.length, direct.json.grid.rows * direct.json.grid.cols)
  assert.ok(Math.max(...flat) - Math.min(...flat) > 1e-4, `keep scores are uniform: ${Math.min(...flat)}..${Math.max(...flat)}`)

  // The heatmap as drawn: with opacity 1 only the colour scale shows; its cells differ.
  await setRange('#heatmap-opacity', 1)
  const distinctColours = await page.$eval('#keep-score-canvas', (el) => {
    const canvas = el as HTMLCanvasElement
    const grid = JSON.parse(canvas.dataset.keepScores ?? '[]') as number[][]
    const rows = grid.length
    const cols = grid[0].length
    const ctx = canvas.getContext('2d') as CanvasRenderingContext2D
    const seen = new Set<string>()
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const d = ctx.getImageData(Math.floor((c + 0.5) * canvas.width / cols), Math.floor((r + 0.3) * canvas.height / rows), 1, 1).data
        seen.add(`${d[0]},${d[1]},${d[2]}`)
      }
    }
    return seen.size
  })
  assert.ok(distinctColours > 1, 'the heatmap is one flat colour')

  // The binary mask is the API's at the bundle ratio...
  assert.equal(await page.getAttribute('#mask-canvas', 'data-matches-api'), 'true')
  assert.deepEqual(JSON.parse(await page.getAttribute('#mask-canvas', 'data-mask') ?? 'null'), direct.json.mask)

  // ...and the four panels of both reconstructions are decoded images.
  for (const kind of ['learned', 'random']) {
    const sizes = await page.$$eval(`#recon-${kind} img[data-panel]`, (imgs) => imgs.map((i) => (i as HTMLImageElement).naturalWidth))
    assert.equal(sizes.length, 4, kind)
    assert.ok(sizes.every((w) => w > 0), `${kind}: a panel did not decode`)
    const mean = Number(await page.getAttribute(`#recon-${kind} .recon-content`, 'data-mean-patch-error'))
    assert.ok(Number.isFinite(mean) && mean >= 0, `${kind} mean patch error ${mean}`)
  }
  // The audit trail names the model and its full sha256 as the API reported them.
  assert.equal(await page.textContent('#audit-trail [data-field="keep-score-graph-sha256"]'), direct.json.model_sha256)
  assert.match(await page.textContent('#audit-trail [data-field="preprocessing"]') ?? '', /"center_crop":64/)
  await page.screenshot({ path: join(ARTIFACTS, '02-mask-audit.png'), fullPage: true })

  // The downloadable audit record holds the same numbers.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-audit')])
  const record = JSON.parse(readFileSync(await download.path(), 'utf8'))
  assert.deepEqual(record.mask_map.keep_score, direct.json.keep_score)
  assert.equal(record.model.id, model)
  assert.ok(Number.isFinite(record.reconstructions.learned.mean_patch_error))
  assert.equal(record.reconstructions.random.seed, record.request.seed)
})

test('moving the mask-ratio slider recomputes top-k exactly as the API does', opts, async () => {
  await resetAuditState()
  await setRange('#mask-ratio', 0.5)
  assert.equal(await waitForAudit(), 'done')
  await page.waitForFunction(() => document.querySelector('#mask-canvas')?.getAttribute('data-matches-api') !== null, null, { timeout: WAIT_MS })
  assert.equal(await page.getAttribute('#mask-canvas', 'data-matches-api'), 'true')
  const mask: number[][] = JSON.parse(await page.getAttribute('#mask-canvas', 'data-mask') ?? 'null')
  const removed = mask.flat().filter((m) => m === 1).length
  assert.equal(removed, mask.flat().length - Math.floor(mask.flat().length * 0.5))
})

test('an invalid file shows the API\'s error code', opts, async () => {
  const bytes = Buffer.from('this is not an image, whatever its name says')
  const direct = await api('/v1/mask-maps', { input: bytes.toString('base64') })
  assert.ok(direct.status >= 400 && direct.status < 500)
  await resetAuditState()
  await page.setInputFiles('#audit-file', { name: 'broken.png', mimeType: 'image/png', buffer: bytes })
  assert.equal(await waitForAudit(), 'error')
  assert.equal(await page.getAttribute('#audit-problem', 'data-problem-code'), direct.json.code)
  assert.equal(await page.textContent('#audit-problem .problem-code'), direct.json.code)
  assert.match(await page.textContent('#audit-problem') ?? '', new RegExp(escapeRegExp(direct.json.title)))
  assert.ok(await page.isHidden('#audit-results'), 'results of the previous image stay hidden')
  await page.screenshot({ path: join(ARTIFACTS, '03-invalid-file.png') })
})

test('a plain MAE bundle: the API\'s 422 is shown, the random-mask reconstruction still appears', opts, async () => {
  const models = (await (await fetch(base + '/v1/models')).json()).data as any[]
  const mae = models.find((m) => m.method === 'mae')
  const clmae = models.find((m) => m.default)
  assert.ok(mae, 'the baseline bundle is loaded')
  await resetAuditState()
  await page.setInputFiles('#audit-file', { name: 'scene.png', mimeType: 'image/png', buffer: await sceneImage() })
  assert.equal(await waitForAudit(), 'done')
  await resetAuditState()
  await page.selectOption('#model-select', mae.id) // re-analyses the same image with the baseline
  assert.equal(await waitForAudit(), 'done')
  assert.equal(await page.getAttribute('#audit-problem', 'data-problem-code'), 'MODEL_NO_MASKING_MODULE')
  assert.equal((await page.$$('#recon-random img[data-panel]')).length, 4)
  assert.equal((await page.$$('#recon-learned img[data-panel]')).length, 0)
  assert.match(await page.textContent('#recon-learned') ?? '', /without a masking module/)
  await page.screenshot({ path: join(ARTIFACTS, '04-mae-baseline.png'), fullPage: true })
  await resetAuditState()
  await page.selectOption('#model-select', clmae.id)
  assert.equal(await waitForAudit(), 'done')
  assert.ok(await page.isHidden('#audit-problem'))
})

test('a few-shot classifier is made from two classes and predicts the label of a new image', opts, async () => {
  // Keyboard: the tabs follow the WAI-ARIA pattern (arrow keys move and select).
  await page.focus('#tab-audit')
  await page.keyboard.press('ArrowRight')
  assert.equal(await page.getAttribute('#tab-fewshot', 'aria-selected'), 'true')
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'tab-fewshot')
  assert.ok(await page.isVisible('#view-fewshot'))
  assert.ok(await page.isHidden('#view-audit'))
  await page.fill('#clf-name', 'stripes-e2e')
  await page.fill('#group-label-1', 'red')
  await page.fill('#group-label-2', 'blue')
  const examples = async (kind: 'red' | 'blue', seeds: number[]) =>
    Promise.all(seeds.map(async (s) => ({ name: `${kind}-${s}.png`, mimeType: 'image/png', buffer: await classImage(kind, s) })))
  await page.setInputFiles('#group-files-1', await examples('red', [1, 2, 3, 4]))
  await page.setInputFiles('#group-files-2', await examples('blue', [5, 6, 7, 8]))
  await page.click('#create-classifier')
  await page.waitForSelector('#create-result [data-classifier-id], #fewshot-problem[data-problem-code]', { timeout: WAIT_MS })
  assert.equal(await page.getAttribute('#fewshot-problem', 'data-problem-code'), null, await page.textContent('#fewshot-problem') ?? '')
  const id = await page.getAttribute('#create-result [data-classifier-id]', 'data-classifier-id')
  assert.ok(id)
  assert.match(await page.textContent('#create-result .cv-accuracy') ?? '', /%/) // every class has 4 examples: CV is defined

  // The new classifier is listed and chosen for prediction.
  await page.waitForSelector(`#classifier-table tr[data-classifier-id="${id}"]`, { timeout: WAIT_MS })
  assert.equal(await page.inputValue('#predict-classifier'), id)
  await page.setInputFiles('#predict-files', [
    { name: 'query-red.png', mimeType: 'image/png', buffer: await classImage('red', 101) },
    { name: 'query-blue.png', mimeType: 'image/png', buffer: await classImage('blue', 202) }
  ])
  await page.waitForSelector('.prediction', { timeout: WAIT_MS })
  const predicted = await page.$$eval('.prediction', (fs) => fs.map((f) => (f as HTMLElement).dataset.predictedLabel))
  assert.deepEqual(predicted, ['red', 'blue'])
  await page.screenshot({ path: join(ARTIFACTS, '05-few-shot.png'), fullPage: true })

  // Delete it from the list.
  await page.click(`#classifier-table tr[data-classifier-id="${id}"] button`)
  await page.waitForSelector(`#classifier-table tr[data-classifier-id="${id}"]`, { state: 'detached', timeout: WAIT_MS })
})

test('with API keys on, the page is open, shows the 401 plainly, and works once a key is entered', opts, async () => {
  const p = await newPage(browser)
  try {
    await p.goto(keyedBase + '/')
    await p.waitForSelector('#global-problem[data-problem-code]', { timeout: WAIT_MS })
    assert.equal(await p.getAttribute('#global-problem', 'data-problem-code'), 'AUTH_KEY_MISSING')
    await p.screenshot({ path: join(ARTIFACTS, '06-api-key-missing.png') })
    await p.fill('#api-key', API_KEY)
    await p.click('#api-key-form button[type="submit"]')
    await p.waitForSelector('body[data-models-loaded="true"]', { timeout: WAIT_MS })
    assert.ok(await p.isHidden('#global-problem'))
    assert.equal(await p.evaluate(() => localStorage.getItem('clmae.apiKey')), API_KEY)
  } finally {
    await p.close()
  }
})

test('no uncaught script error and no content-security-policy violation on any page', opts, () => {
  assert.deepEqual(pageErrors, [])
})

function escapeRegExp (s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

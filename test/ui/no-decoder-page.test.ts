// End to end: the audit page with a bundle that has no decoder (manifest format 2, as
// clmae.import_checkpoint writes for an encoder-only checkpoint; made here from the shipped
// mae-vit-mini-p8-64 by test/helpers/format2-bundle.ts). The page must show the API's MODEL_NO_DECODER
// where the reconstructions would be, as it shows MODEL_NO_MASKING_MODULE, and not treat the image as
// refused. Same browser set-up and skip rule as audit-page.test.ts (Debian's chromium, playwright-core).
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import sharp from 'sharp'
import { BASELINE_MODEL, MODELS_DIR, startServer, type TestServer } from '../helpers/server.js'
import { writeEncoderOnlyBundle } from '../helpers/format2-bundle.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const SKIP = process.env.CLMAE_SKIP_BROWSER_TESTS === '1'
const WAIT_MS = 120_000
const opts = { skip: SKIP ? 'CLMAE_SKIP_BROWSER_TESTS=1' : false, timeout: 300_000 }
const ENCODER_ONLY = 'mae-vit-mini-encoder-only'

let root: string
let server: TestServer
let browser: Browser
let page: Page
const pageErrors: string[] = []

before(async () => {
  if (SKIP) return
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not at ${CHROMIUM}. Run \`bash scripts/install-chromium.sh\`, set CHROMIUM_PATH, ` +
      'or set CLMAE_SKIP_BROWSER_TESTS=1 to skip the browser tests.')
  }
  root = mkdtempSync(join(tmpdir(), 'clmae-ui-no-decoder-'))
  writeEncoderOnlyBundle(join(MODELS_DIR, BASELINE_MODEL), join(root, ENCODER_ONLY), ENCODER_ONLY)
  server = await startServer(undefined, { modelsDir: root, defaultModel: ENCODER_ONLY, maxBatchSize: 2 })
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] })
  page = await browser.newPage({ viewport: { width: 1300, height: 1000 } })
  page.setDefaultTimeout(WAIT_MS)
  page.on('pageerror', (error) => { pageErrors.push(error.message) })
})

after(async () => {
  await browser?.close()
  await server?.app.close()
  if (root !== undefined) rmSync(root, { recursive: true, force: true })
})

test('an encoder-only bundle: MODEL_NO_DECODER is shown in place of the reconstructions, the page is not in error', opts, async () => {
  await page.goto(server.url + '/')
  await page.waitForSelector('body[data-models-loaded="true"]')
  assert.equal(await page.inputValue('#model-select'), ENCODER_ONLY)
  const raw = Buffer.alloc(64 * 48 * 3, 0).map((_, i) => (i * 7) % 251)
  const image = await sharp(raw, { raw: { width: 64, height: 48, channels: 3 } }).png().toBuffer()
  await page.setInputFiles('#audit-file', { name: 'pattern.png', mimeType: 'image/png', buffer: image })
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.auditState ?? ''))
  assert.equal(await page.$eval('body', (b) => (b as HTMLElement).dataset.auditState), 'done')
  assert.equal(await page.getAttribute('#audit-problem', 'data-problem-code'), 'MODEL_NO_DECODER')
  assert.ok(await page.isVisible('#audit-results'))
  assert.equal(await page.textContent('#recon-random .problem-code'), 'MODEL_NO_DECODER')
  assert.match(await page.textContent('#recon-random') ?? '', /no decoder/)
  assert.equal((await page.$$('img[data-panel]')).length, 0)
  assert.match(await page.textContent('#recon-learned') ?? '', /without a masking module/)
  assert.deepEqual(pageErrors, [])
})

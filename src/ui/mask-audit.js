// @ts-check
// View 1, "Mask audit": one image in; the learned keep-score heatmap (POST /v1/mask-maps), the
// binary mask for the chosen ratio, and reconstructions under the learned mask and under a random
// mask of the same ratio (POST /v1/reconstructions), with their per-patch errors; the model, its
// sha256 and the preprocessing are listed as the audit trail. Numbers shown are the API's; the
// page only recomputes top-k while the ratio slider moves (top-k.js) and checks it against the API.

import { callApi, fileToDataUri } from './api-client.js'
import { clearProblem, fmt, h, showProblem } from './dom.js'
import { drawGrid, drawLegend, drawMask, modelView } from './heatmap.js'
import { topKMask } from './top-k.js'
import { bindDropZone } from './drop-zone.js'

/** @param {string} id */
const $ = (id) => /** @type {any} */ (document.getElementById(id))

/** Codes that say what the model lacks (not what is wrong with the image): the page still shows the rest. */
const MODEL_LACKS = new Set(['MODEL_NO_MASKING_MODULE', 'MODEL_NO_DECODER'])

/**
 * @param {{currentModel: () => (import('./app.js').ModelInfo | undefined)}} deps
 */
export function createMaskAudit ({ currentModel }) {
  const fileInput = /** @type {HTMLInputElement} */ ($('audit-file'))
  const status = $('audit-status')
  const problemBox = $('audit-problem')
  const results = $('audit-results')
  const ratioInput = /** @type {HTMLInputElement} */ ($('mask-ratio'))
  const ratioOutput = $('mask-ratio-value')
  const opacityInput = /** @type {HTMLInputElement} */ ($('heatmap-opacity'))
  const opacityOutput = $('heatmap-opacity-value')
  const keepCanvas = /** @type {HTMLCanvasElement} */ ($('keep-score-canvas'))
  const maskCanvas = /** @type {HTMLCanvasElement} */ ($('mask-canvas'))
  const original = /** @type {HTMLImageElement} */ ($('audit-original'))

  /** What is on screen: the image and the API's answers for it. */
  const state = {
    /** @type {File | null} */ file: null,
    /** @type {string | null} */ dataUri: null,
    /** @type {CanvasImageSource | null} */ base: null, // the model's view of the image, under the heatmap
    /** @type {any} */ maskMap: null,
    /** @type {number | undefined} */ seed: undefined,
    /** @type {any} */ record: null, // the API's answers as received, for the downloadable audit record
    request: 0 // id of the newest request; older answers are dropped
  }

  drawLegend($('legend-canvas'))

  bindDropZone($('audit-drop'), fileInput, (files) => { loadFile(files[0]) })

  ratioInput.addEventListener('input', () => {
    ratioOutput.value = Number(ratioInput.value).toFixed(2)
    renderMask() // instant top-k over the keep scores already here
  })
  ratioInput.addEventListener('change', () => { if (state.dataUri) analyse() })
  opacityInput.addEventListener('input', () => {
    opacityOutput.value = Number(opacityInput.value).toFixed(2)
    renderHeatmap()
  })
  $('download-audit').addEventListener('click', downloadRecord)
  $('new-seed').addEventListener('click', () => {
    state.seed = undefined // the API draws and echoes a new one
    if (state.dataUri) analyse()
  })

  /** @param {File} file */
  async function loadFile (file) {
    state.file = file
    state.dataUri = await fileToDataUri(file)
    state.seed = undefined
    if (original.src.startsWith('blob:')) URL.revokeObjectURL(original.src)
    original.src = URL.createObjectURL(file)
    $('audit-original-caption').textContent = `Uploaded: ${file.name} (${file.type || 'unknown type'}, ${file.size} bytes)`
    await analyse()
  }

  /** Queries the three answers for the current image, model and ratio, then draws them. */
  async function analyse () {
    const model = currentModel()
    if (!model || !state.dataUri) return
    const id = ++state.request
    const ratio = Number(ratioInput.value)
    const input = state.dataUri
    clearProblem(problemBox)
    status.textContent = `Asking ${model.id} for the mask map and reconstructions…`
    results.setAttribute('aria-busy', 'true')
    document.body.dataset.auditState = 'loading'

    const learnedAvailable = model.method === 'clmae'
    const [maskMap, learned, random] = await Promise.allSettled([
      // A plain MAE bundle has no masking module, an encoder-only import no decoder: still ask, so that
      // their 422s (MODEL_NO_MASKING_MODULE, MODEL_NO_DECODER) are shown as the API words them.
      callApi('/v1/mask-maps', { json: { input, model: model.id, mask_ratio: ratio } }),
      learnedAvailable
        ? callApi('/v1/reconstructions', { json: { input, model: model.id, masking: 'learned', mask_ratio: ratio } })
        : Promise.resolve(null),
      callApi('/v1/reconstructions', { json: { input, model: model.id, masking: 'random', mask_ratio: ratio, seed: state.seed } })
    ])
    if (id !== state.request) return // a newer request superseded this one

    const failures = [random, learned, maskMap].filter((r) => r.status === 'rejected')
    if (failures.length > 0) showProblem(problemBox, /** @type {PromiseRejectedResult} */ (failures[0]).reason)
    results.removeAttribute('aria-busy')
    // The image was refused when an answer failed for another reason than what the model lacks.
    const refused = [maskMap, random].some((r) => r.status === 'rejected' && !MODEL_LACKS.has(r.reason?.code))
    if (maskMap.status === 'rejected' && random.status === 'rejected' && refused) {
      status.textContent = 'The API refused this image; see the error below.'
      results.hidden = true // nothing on screen may belong to an earlier image
      document.body.dataset.auditState = 'error'
      return
    }

    state.maskMap = maskMap.status === 'fulfilled' ? maskMap.value : null
    const learnedValue = learned.status === 'fulfilled' ? learned.value : null
    const randomValue = random.status === 'fulfilled' ? random.value : null
    if (randomValue?.seed !== undefined) state.seed = randomValue.seed
    state.base = await loadBase(learnedValue ?? randomValue, state.maskMap)
    if (id !== state.request) return

    results.hidden = false
    renderHeatmap()
    renderMask()
    renderSummary()
    renderReconstructions(learnedValue, learned.status === 'rejected' ? learned.reason : null,
      randomValue, random.status === 'rejected' ? random.reason : null, learnedAvailable, model.has_decoder !== false)
    renderAuditTrail(model, learnedValue ?? randomValue)
    state.record = {
      at: new Date().toISOString(),
      image: { name: state.file?.name, type: state.file?.type, bytes: state.file?.size },
      model: { id: model.id, method: model.method, graph_sha256: model.sha256 },
      request: { mask_ratio: ratio, seed: randomValue?.seed },
      mask_map: state.maskMap,
      // Panels (PNG) are left out: the record is the numbers, and the image can be re-sent to replay it.
      reconstructions: Object.fromEntries([['learned', learnedValue], ['random', randomValue]]
        .filter(([, v]) => v).map(([k, v]) => [k, { ...v, panels: undefined }]))
    }
    status.textContent = `Done: ${model.id}, mask ratio ${ratio.toFixed(2)}.`
    document.body.dataset.auditState = 'done'
  }

  /**
   * The picture under the heatmap: the reconstruction answer's "original" panel is exactly the
   * model's input; without it, the browser's own crop of the file stands in (display only).
   * @param {any} recon @param {any} maskMap
   * @returns {Promise<CanvasImageSource | null>}
   */
  async function loadBase (recon, maskMap) {
    try {
      if (recon?.panels?.original) {
        const img = new Image()
        img.src = `data:image/png;base64,${recon.panels.original}`
        await img.decode()
        return img
      }
      if (state.file && maskMap?.preprocessing) return modelView(await createImageBitmap(state.file), maskMap.preprocessing)
    } catch { /* the browser cannot decode it: the heatmap is drawn on grey */ }
    return null
  }

  function renderHeatmap () {
    const keepScore = state.maskMap?.keep_score
    // No mask map (plain MAE bundle, or the request failed): no heatmap or learned mask to draw.
    $('keep-score-figure').hidden = !keepScore
    $('mask-figure').hidden = !keepScore
    if (!keepScore) {
      keepCanvas.dataset.keepScores = ''
      $('keep-score-table').replaceChildren()
      return
    }
    drawGrid(keepCanvas, keepScore, { base: state.base, opacity: Number(opacityInput.value), gridLines: true })
    // The exact numbers the API sent, for people and for the end-to-end test.
    keepCanvas.dataset.keepScores = JSON.stringify(keepScore)
    $('keep-score-table').replaceChildren(gridTable(keepScore, 'keepScore', 'Keep score'))
  }

  function renderMask () {
    const keepScore = state.maskMap?.keep_score
    const caption = $('mask-caption')
    if (!keepScore) {
      maskCanvas.dataset.mask = ''
      return
    }
    const ratio = Number(ratioInput.value)
    const { mask, numKept } = topKMask(keepScore, ratio)
    drawMask(maskCanvas, mask, state.base)
    maskCanvas.dataset.mask = JSON.stringify(mask)
    const L = mask.length * mask[0].length
    let agreement = ''
    if (Math.abs(state.maskMap.mask_ratio - ratio) < 1e-9) {
      const same = JSON.stringify(mask) === JSON.stringify(state.maskMap.mask)
      maskCanvas.dataset.matchesApi = String(same)
      agreement = same ? ' · same as the API\'s mask' : ' · DIFFERS from the API\'s mask (please report)'
    } else {
      delete maskCanvas.dataset.matchesApi
      agreement = ' · release the slider to ask the API'
    }
    caption.textContent = `Binary mask at ratio ${ratio.toFixed(2)}: ${numKept} of ${L} patches kept, grey = removed (1)${agreement}`
  }

  function renderSummary () {
    const box = $('keep-score-summary')
    const s = state.maskMap?.summary
    if (!s) { box.replaceChildren(h('dt', {}, 'Keep scores'), h('dd', {}, 'none: no mask map for this model (see the error above)')); return }
    box.replaceChildren(...[
      ['mean', s.mean], ['std', s.std], ['min', s.min], ['max', s.max],
      ['entropy (bits)', s.entropy_bits], ['top-decile share', s.top_decile_share]
    ].flatMap(([name, value]) => [h('dt', {}, name), h('dd', { dataset: { value: String(value) } }, fmt(value, 4))]))
  }

  /**
   * @param {any} learned @param {unknown} learnedError
   * @param {any} random @param {unknown} randomError
   * @param {boolean} learnedAvailable @param {boolean} decoderAvailable
   */
  function renderReconstructions (learned, learnedError, random, randomError, learnedAvailable, decoderAvailable) {
    // One colour range for both error grids, so equal colours mean equal errors.
    const errors = [learned, random].flatMap((r) => r?.patch_error?.flat() ?? []).filter((v) => v !== null)
    const range = /** @type {[number, number]} */ ([0, Math.max(1e-12, ...errors)])
    const learnedBody = $('recon-learned').querySelector('.recon-body')
    const noDecoder = () => h('p', { class: 'muted' }, 'This model has no decoder (imported from an encoder-only checkpoint): it serves embeddings, not reconstructions.')
    if (learned) learnedBody.replaceChildren(reconView(learned, range, 'learned'))
    else if (!learnedAvailable) learnedBody.replaceChildren(h('p', { class: 'muted' }, 'This model was trained without a masking module (method mae): there is no learned mask.'))
    else learnedBody.replaceChildren(...(decoderAvailable ? [] : [noDecoder()]), inlineProblem(learnedError))
    const randomBody = $('recon-random').querySelector('.recon-body')
    $('recon-random-title').textContent = random ? `Random mask (seed ${random.seed})` : 'Random mask'
    if (random) randomBody.replaceChildren(reconView(random, range, 'random'))
    else randomBody.replaceChildren(...(decoderAvailable ? [] : [noDecoder()]), inlineProblem(randomError))
    // One image and one random seed: the difference is a data point, not a verdict on the model.
    $('error-comparison').textContent = learned && random
      ? `Mean patch error: learned mask ${fmt(learned.mean_patch_error, 4)}, random mask (seed ${random.seed}) ` +
        `${fmt(random.mean_patch_error, 4)}; learned − random = ${fmt(learned.mean_patch_error - random.mean_patch_error, 4)} ` +
        '(positive: the learned mask hides patches that are harder to reconstruct).'
      : ''
  }

  /**
   * @param {any} recon a /v1/reconstructions answer
   * @param {[number, number]} range colour range of the error grid
   * @param {string} kind
   */
  function reconView (recon, range, kind) {
    const panels = [
      ['original', 'Model input'], ['masked', 'Visible patches'],
      ['reconstruction', 'Reconstruction'], ['reconstruction_visible', 'Reconstruction with visible patches pasted']
    ]
    const errorCanvas = /** @type {HTMLCanvasElement} */ (h('canvas', { width: 192, height: 192, role: 'img', class: 'error-grid', 'aria-label': `Per-patch error, ${kind} mask` }))
    drawGrid(errorCanvas, recon.patch_error, { range, gridLines: true })
    errorCanvas.dataset.patchError = JSON.stringify(recon.patch_error)
    const kept = recon.mask.flat().filter((/** @type {number} */ m) => m === 0).length
    return h('div', { class: 'recon-content', dataset: { kind, meanPatchError: String(recon.mean_patch_error) } },
      h('div', { class: 'panels' }, ...panels.map(([key, label]) =>
        h('figure', { class: 'panel' },
          h('img', { src: `data:image/png;base64,${recon.panels[key]}`, alt: `${label}, ${kind} mask`, dataset: { panel: key } }),
          h('figcaption', {}, label)))),
      h('p', { class: 'mean-error' }, 'Mean patch error: ', h('strong', { class: 'mean-patch-error' }, fmt(recon.mean_patch_error, 4)),
        ` over ${recon.mask.flat().length - kept} removed patches (${kept} kept)`),
      h('figure', { class: 'panel' }, errorCanvas,
        h('figcaption', {}, 'Per-patch error (kept patches grey)',
          h('span', { class: 'legend' }, h('span', {}, '0'), legendCanvas(), h('span', {}, fmt(range[1], 4))))),
      h('details', {}, h('summary', {}, 'Per-patch error as numbers'), gridTable(recon.patch_error, 'patchError', 'Patch error')),
      h('p', { class: 'muted' }, `norm_pix: used ${recon.norm_pix?.used}, uses true patch statistics ${recon.norm_pix?.uses_true_patch_statistics}`)
    )
  }

  /** @param {import('./app.js').ModelInfo} model @param {any} recon */
  function renderAuditTrail (model, recon) {
    const m = state.maskMap
    const pre = m?.preprocessing ?? recon?.preprocessing
    const rows = [
      ['model', m?.model ?? recon?.model ?? model.id],
      ['method', model.method],
      // Each answer names the graph that produced it: keep scores from keep_scores, panels from the decoder.
      ['keep-score graph sha256', m?.model_sha256 ?? '– (no mask map)'],
      ['reconstruction graph sha256', recon?.model_sha256 ?? '–'],
      ['all graph sha256s', Object.entries(recon?.graph_sha256 ?? model.sha256 ?? {}).map(([g, hex]) => `${g} ${hex}`).join('\n')],
      ['grid', m ? `${m.grid.rows} × ${m.grid.cols} patches of ${m.patch_size} px` : recon ? `${recon.grid.rows} × ${recon.grid.cols} patches of ${recon.patch_size} px` : '–'],
      ['mask ratio (API)', m ? `${m.mask_ratio} → ${m.num_kept} kept` : recon ? `${recon.mask_ratio} → ${recon.num_kept} kept` : '–'],
      ['random seed', String(state.seed ?? '–')],
      ['image', state.file ? `${state.file.name}, ${state.file.size} bytes${pre?.input ? `; decoded as ${pre.input.format}, ${pre.input.width} × ${pre.input.height}` : ''}` : '–'],
      ['preprocessing', describeTransform(pre ?? model.manifest?.eval_transform)],
      ['at', new Date().toISOString()]
    ]
    $('audit-trail').replaceChildren(...rows.flatMap(([name, value]) => [
      h('dt', {}, name),
      h('dd', { dataset: { field: name.replaceAll(' ', '-') } }, h('code', {}, value))
    ]))
  }

  function downloadRecord () {
    if (!state.record) return
    const url = URL.createObjectURL(new Blob([JSON.stringify(state.record, null, 2)], { type: 'application/json' }))
    const link = h('a', { href: url, download: `mask-audit-${state.record.model.id}-${state.record.at.replaceAll(':', '-')}.json` })
    link.click()
    setTimeout(() => URL.revokeObjectURL(url), 1000)
  }

  return {
    /** A new model: its training mask ratio becomes the slider's value, and the image is re-analysed. */
    onModelChange () {
      const model = currentModel()
      const ratio = model?.manifest?.mask_ratio
      if (typeof ratio === 'number') {
        ratioInput.value = String(ratio)
        ratioOutput.value = ratio.toFixed(2)
      }
      if (state.dataUri) analyse()
    }
  }
}

/**
 * A table of a rows x cols grid; each cell carries its exact value in a data attribute.
 * @param {(number | null)[][]} grid @param {string} key data attribute name (camelCase) @param {string} label
 */
function gridTable (grid, key, label) {
  const cols = grid[0]?.length ?? 0
  return h('table', { class: 'grid-table', 'aria-label': `${label} by patch row and column` },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'row'), ...Array.from({ length: cols }, (_, c) => h('th', { scope: 'col' }, `col ${c}`)))),
    h('tbody', {}, ...grid.map((row, r) => h('tr', {}, h('th', { scope: 'row' }, String(r)),
      ...row.map((value) => h('td', { dataset: { [key]: String(value) } }, value === null ? '—' : fmt(value, 3)))))))
}

/**
 * The eval transform in words, then as sent (the audit trail keeps the API's exact JSON).
 * @param {any} t
 */
function describeTransform (t) {
  if (!t) return '–'
  return `resize shorter side to ${t.resize_shorter_side} (${t.interpolation}${t.antialias ? ', antialias' : ''}), ` +
    `centre crop ${t.center_crop} × ${t.center_crop}, ${t.color_mode}, (x − mean) / std per channel\n${JSON.stringify(t)}`
}

function legendCanvas () {
  const canvas = /** @type {HTMLCanvasElement} */ (h('canvas', { width: 120, height: 10, 'aria-hidden': 'true' }))
  drawLegend(canvas)
  return canvas
}

/** @param {unknown} error */
function inlineProblem (error) {
  const box = h('div', { class: 'problem', role: 'alert' })
  showProblem(box, error)
  return box
}

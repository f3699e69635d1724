// @ts-check
// View 2, "Few-shot classifier": labelled example images -> POST /v1/classifiers (shows the
// cross-validated accuracy the API reports), new images -> POST /v1/classifiers/{id}/predict
// (labels with probabilities), and the stored classifiers (GET /v1/classifiers, DELETE /{id}).

import { callApi, fileToDataUri } from './api-client.js'
import { clearProblem, fmt, h, showProblem } from './dom.js'
import { bindDropZone } from './drop-zone.js'

/** @param {string} id */
const $ = (id) => /** @type {any} */ (document.getElementById(id))

/**
 * @param {{currentModel: () => (import('./app.js').ModelInfo | undefined)}} deps
 */
export function createFewShot ({ currentModel }) {
  const problemBox = $('fewshot-problem')
  const status = $('fewshot-status')
  const classList = $('class-list')
  const predictSelect = /** @type {HTMLSelectElement} */ ($('predict-classifier'))
  /** @type {{label: HTMLInputElement, files: File[], row: HTMLElement}[]} */
  const groups = []
  let listed = false
  let groupsMade = 0 // numbers rows, so ids stay unique after a row is removed

  addGroup('')
  addGroup('')
  $('add-class').addEventListener('click', () => addGroup('')?.label.focus())
  $('create-form').addEventListener('submit', (/** @type {SubmitEvent} */ event) => { event.preventDefault(); createClassifier() })
  $('refresh-classifiers').addEventListener('click', () => refreshList())
  bindDropZone($('predict-drop'), $('predict-files'), (files) => { predict(files) })

  /** One row of the examples form: a label, its images (drop or choose) and their thumbnails. */
  function addGroup (/** @type {string} */ initialLabel) {
    const n = ++groupsMade
    const labelInput = /** @type {HTMLInputElement} */ (h('input', { id: `group-label-${n}`, class: 'group-label', value: initialLabel, required: true, placeholder: 'label' }))
    const fileInput = /** @type {HTMLInputElement} */ (h('input', { id: `group-files-${n}`, class: 'group-files', type: 'file', accept: 'image/*', multiple: true }))
    const thumbs = h('ul', { class: 'thumbs', 'aria-label': 'chosen images' })
    const count = h('span', { class: 'muted group-count' }, '0 images')
    const zone = h('div', { class: 'drop-zone small' },
      h('label', { for: fileInput.id }, 'Images for this label'), fileInput, count)
    const row = h('div', { class: 'group', dataset: { group: String(n) } },
      h('div', { class: 'field' }, h('label', { for: labelInput.id }, `Label ${n}`), labelInput),
      zone, thumbs,
      h('button', { type: 'button', onclick: () => showFiles([]) }, `Clear images of label ${n}`),
      h('button', { type: 'button', class: 'remove-group', onclick: () => removeGroup(group) }, `Remove label ${n}`))
    const group = { label: labelInput, files: /** @type {File[]} */ ([]), row }
    /** @param {File[]} files the group's images from now on */
    function showFiles (files) {
      group.files = files
      count.textContent = `${files.length} image${files.length === 1 ? '' : 's'}`
      thumbs.replaceChildren(...files.map((f) => h('li', {}, h('img', { src: URL.createObjectURL(f), alt: f.name, width: 48, height: 48 }))))
    }
    bindDropZone(zone, fileInput, (files) => showFiles([...group.files, ...files]))
    groups.push(group)
    classList.append(row)
    return group
  }

  /** @param {{row: HTMLElement}} group */
  function removeGroup (group) {
    const i = groups.indexOf(/** @type {any} */ (group))
    if (i >= 0) groups.splice(i, 1)
    group.row.remove()
  }

  async function createClassifier () {
    clearProblem(problemBox)
    const model = currentModel()
    const examples = []
    for (const group of groups) {
      for (const file of group.files) examples.push({ label: group.label.value.trim(), input: await fileToDataUri(file) })
    }
    status.textContent = `Embedding ${examples.length} examples and fitting…`
    try {
      const created = await callApi('/v1/classifiers', {
        json: { name: $('clf-name').value, method: $('clf-method').value, model: model?.id, examples }
      })
      $('create-result').replaceChildren(classifierCard(created))
      status.textContent = `Created classifier ${created.id}.`
      await refreshList(created.id)
    } catch (error) {
      status.textContent = 'The classifier was not created.'
      showProblem(problemBox, error)
    }
  }

  /** @param {File[]} files */
  async function predict (files) {
    clearProblem(problemBox)
    const id = predictSelect.value
    if (!id) {
      status.textContent = 'Create or choose a classifier first.'
      return
    }
    status.textContent = `Classifying ${files.length} image(s)…`
    try {
      const inputs = await Promise.all(files.map(fileToDataUri))
      // No `model`: the API embeds with the model the classifier is pinned to.
      const answer = await callApi(`/v1/classifiers/${encodeURIComponent(id)}/predict`, { json: { input: inputs } })
      const results = answer.data
      $('predict-results').replaceChildren(...files.map((file, i) => predictionView(file, results[i])))
      status.textContent = `Classified ${files.length} image(s) with ${id}.`
    } catch (error) {
      status.textContent = 'Classification failed.'
      showProblem(problemBox, error)
    }
  }

  /** Every stored classifier, following next_cursor page by page. */
  async function listAll () {
    const items = []
    let cursor = null
    do {
      const page = await callApi(`/v1/classifiers?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
      items.push(...page.data)
      cursor = page.next_cursor
    } while (cursor && items.length < 1000) // a bound, so a misbehaving server cannot loop the page
    return items
  }

  /** @param {string} [select] id to select afterwards */
  async function refreshList (select) {
    try {
      const items = await listAll()
      const tbody = $('classifier-table').querySelector('tbody')
      tbody.replaceChildren(...items.map((/** @type {any} */ c) => h('tr', { dataset: { classifierId: c.id } },
        h('td', {}, c.name ?? ''), h('td', {}, h('code', {}, c.id)), h('td', {}, String(c.version ?? '')),
        h('td', {}, c.method ?? ''), h('td', {}, labelSummary(c.labels)),
        h('td', {}, accuracyText(c)), h('td', { title: `encoder sha256 ${c.model_sha256}` }, c.model ?? ''),
        h('td', {}, h('button', { type: 'button', class: 'danger', onclick: () => remove(c), 'aria-label': `Delete classifier ${c.name ?? c.id}` }, 'Delete')))))
      if (items.length === 0) tbody.replaceChildren(h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No stored classifiers.')))
      const previous = select ?? predictSelect.value
      predictSelect.replaceChildren(...items.map((/** @type {any} */ c) => h('option', { value: c.id }, `${c.name ?? c.id} (v${c.version ?? '?'})`)))
      if (items.some((/** @type {any} */ c) => c.id === previous)) predictSelect.value = previous
      listed = true
    } catch (error) {
      showProblem(problemBox, error)
    }
  }

  /** @param {any} classifier */
  async function remove (classifier) {
    if (!confirm(`Delete classifier ${classifier.name ?? classifier.id}?`)) return
    clearProblem(problemBox)
    try {
      await callApi(`/v1/classifiers/${encodeURIComponent(classifier.id)}`, { method: 'DELETE' })
      status.textContent = `Deleted classifier ${classifier.id}.`
    } catch (error) {
      showProblem(problemBox, error)
    }
    await refreshList()
  }

  return {
    onModelChange () {},
    onShow () { if (!listed) refreshList() }
  }
}

/** The creation answer: id, version, labels with counts, cross-validated accuracy and its scheme. */
function classifierCard (/** @type {any} */ c) {
  return h('dl', { class: 'summary created', dataset: { classifierId: c.id } },
    h('dt', {}, 'name'), h('dd', {}, c.name),
    h('dt', {}, 'id'), h('dd', {}, h('code', {}, c.id)),
    h('dt', {}, 'version'), h('dd', {}, String(c.version)),
    h('dt', {}, 'labels'), h('dd', {}, labelSummary(c.labels)),
    h('dt', {}, 'cross-validated accuracy'), h('dd', { class: 'cv-accuracy' }, accuracyText(c)),
    h('dt', {}, 'model'), h('dd', {}, `${c.model ?? ''} ${c.model_sha256 ? `(sha256 ${String(c.model_sha256).slice(0, 12)}…)` : ''}`))
}

/** @param {{label: string, count: number}[]} labels */
function labelSummary (labels) {
  return (labels ?? []).map((l) => `${l.label} (${l.count})`).join(', ')
}

/** @param {any} c a classifier; cross_validation: {scheme, accuracy, C?}, accuracy null without CV */
function accuracyText (c) {
  const cv = c.cross_validation
  if (!cv || cv.accuracy === null || cv.accuracy === undefined) return 'not defined (a label has a single example)'
  return `${(cv.accuracy * 100).toFixed(1)}% (${cv.scheme}${cv.C !== undefined ? `, C = ${cv.C}` : ''})`
}

/**
 * @param {File} file @param {any} result {index, label (null when abstained), abstained, top_k: [{label, probability}] most probable first}
 */
function predictionView (file, result) {
  const top = result?.top_k ?? []
  return h('figure', { class: 'prediction', dataset: { predictedLabel: result?.label ?? '', abstained: String(Boolean(result?.abstained)) } },
    h('img', { src: URL.createObjectURL(file), alt: file.name, width: 96, height: 96 }),
    h('figcaption', {},
      h('p', {}, h('strong', {}, file.name), result?.abstained ? ' – abstained (below the threshold)' : ''),
      h('ol', { class: 'probabilities' }, ...top.map((/** @type {any} */ p) => h('li', {},
        h('span', { class: 'prob-label' }, p.label),
        h('meter', { min: 0, max: 1, value: p.probability, 'aria-label': `probability of ${p.label}` }),
        h('span', { class: 'prob-value' }, fmt(p.probability, 3)))))))
}

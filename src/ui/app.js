// @ts-check
// Entry of the page: the API-key field, the model picker (GET /v1/models), the tabs, and the two
// views. State shared between views is only the chosen model.

import { callApi, getApiKey, setApiKey } from './api-client.js'
import { clearProblem, showProblem } from './dom.js'
import { createMaskAudit } from './mask-audit.js'
import { createFewShot } from './fewshot.js'

/** @typedef {{id: string, default: boolean, method: 'clmae' | 'mae', has_decoder: boolean, has_masking_module: boolean, manifest: any, sha256: Record<string, string>}} ModelInfo sha256: graph name -> hex */

const modelSelect = /** @type {HTMLSelectElement} */ (document.getElementById('model-select'))
const modelInfo = /** @type {HTMLElement} */ (document.getElementById('model-info'))
const globalProblem = /** @type {HTMLElement} */ (document.getElementById('global-problem'))

/** @type {ModelInfo[]} */
let models = []

/** @returns {ModelInfo | undefined} the model chosen in the picker */
function currentModel () {
  return models.find((m) => m.id === modelSelect.value)
}

const maskAudit = createMaskAudit({ currentModel })
const fewShot = createFewShot({ currentModel })

async function loadModels () {
  clearProblem(globalProblem)
  try {
    const list = await callApi('/v1/models')
    models = list.data
    const previous = modelSelect.value
    modelSelect.replaceChildren(...models.map((m) => {
      const option = document.createElement('option')
      option.value = m.id
      option.textContent = `${m.id} (${m.method}${m.default ? ', default' : ''})`
      return option
    }))
    const chosen = models.find((m) => m.id === previous) ?? models.find((m) => m.default) ?? models[0]
    if (chosen) modelSelect.value = chosen.id
    onModelChange()
    document.body.dataset.modelsLoaded = 'true'
  } catch (error) {
    showProblem(globalProblem, error)
    // A missing or wrong key: the field to fix it is the next thing the user needs.
    if (String(globalProblem.dataset.problemCode).startsWith('AUTH_')) keyInput.focus()
  }
}

function onModelChange () {
  const model = currentModel()
  // The encoder is the graph behind embeddings and classifiers; every graph's hash is in the title.
  const encoder = model?.sha256?.encoder ?? Object.values(model?.sha256 ?? {})[0] ?? ''
  modelInfo.textContent = model ? `encoder sha256 ${encoder.slice(0, 12)}…` : ''
  modelInfo.title = model ? Object.entries(model.sha256 ?? {}).map(([g, hex]) => `${g}: ${hex}`).join('\n') : ''
  maskAudit.onModelChange()
  fewShot.onModelChange()
}

modelSelect.addEventListener('change', onModelChange)

// --- API key: stored in localStorage, sent as a Bearer token on every call.
const keyForm = /** @type {HTMLFormElement} */ (document.getElementById('api-key-form'))
const keyInput = /** @type {HTMLInputElement} */ (document.getElementById('api-key'))
keyInput.value = getApiKey()
keyForm.addEventListener('submit', (event) => {
  event.preventDefault()
  setApiKey(keyInput.value.trim())
  loadModels()
})
document.getElementById('api-key-clear')?.addEventListener('click', () => {
  keyInput.value = ''
  setApiKey('')
  loadModels()
})

// --- Tabs (WAI-ARIA tabs pattern: arrow keys move between tabs, one tab in the tab order).
const tabs = /** @type {HTMLButtonElement[]} */ ([...document.querySelectorAll('[role="tab"]')])
/** @param {HTMLButtonElement} tab */
function selectTab (tab) {
  for (const t of tabs) {
    const selected = t === tab
    t.setAttribute('aria-selected', String(selected))
    t.tabIndex = selected ? 0 : -1
    const panel = document.getElementById(/** @type {string} */ (t.getAttribute('aria-controls')))
    if (panel) panel.hidden = !selected
  }
  if (tab.id === 'tab-fewshot') fewShot.onShow()
}
tabs.forEach((tab, i) => {
  tab.addEventListener('click', () => selectTab(tab))
  tab.addEventListener('keydown', (event) => {
    const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0
    if (!step) return
    const next = tabs[(i + step + tabs.length) % tabs.length]
    next.focus()
    selectTab(next)
  })
})

loadModels()

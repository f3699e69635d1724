// @ts-check
// Small DOM helpers shared by the views: element creation without innerHTML (no injection from
// API strings), and the plain display of an API error (title, detail and code).

import { ApiProblem } from './api-client.js'

/**
 * Creates an element. Attributes starting with "on" become listeners; children may be strings.
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...(Node | string | number | null | undefined | false)} children
 * @returns {HTMLElement}
 */
export function h (tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value)
    else if (name === 'dataset') Object.assign(el.dataset, value)
    else el.setAttribute(name, value === true ? '' : String(value))
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    el.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child)
  }
  return el
}

/**
 * Shows an error in a problem box: the API's title, detail and stable code, as sent.
 * Anything that is not an ApiProblem is a bug in the page and is shown as such.
 * @param {HTMLElement} box an element with role="alert"
 * @param {unknown} error
 */
export function showProblem (box, error) {
  const problem = error instanceof ApiProblem
    ? error
    : { title: 'Unexpected error in the page', detail: String(error), code: 'UI_UNEXPECTED', status: 0 }
  box.replaceChildren(
    h('p', { class: 'problem-title' }, problem.title, problem.status ? ` (HTTP ${problem.status})` : ''),
    ...(problem.detail ? [h('p', { class: 'problem-detail' }, problem.detail)] : []),
    h('p', {}, 'Code: ', h('code', { class: 'problem-code' }, problem.code))
  )
  box.dataset.problemCode = problem.code
  box.hidden = false
}

/** @param {HTMLElement} box */
export function clearProblem (box) {
  box.hidden = true
  box.replaceChildren()
  delete box.dataset.problemCode
}

/**
 * Formats a number for display with a fixed number of significant decimals.
 * @param {number | null | undefined} value
 * @param {number} [digits]
 */
export function fmt (value, digits = 3) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–'
  return value.toFixed(digits)
}

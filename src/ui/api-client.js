// @ts-check
// The page's only way to the service: fetch against the public HTTP API, with the optional API key
// sent as `Authorization: Bearer <key>`. Every non-2xx answer becomes an ApiProblem carrying the
// problem+json fields (title, detail, code), so each view can show the API's own words.

const API_KEY_STORAGE = 'clmae.apiKey'

/** An error answer of the API (application/problem+json), or a network failure (code NETWORK_ERROR). */
export class ApiProblem extends Error {
  /**
   * @param {{type?: string, title: string, status: number, detail?: string, code: string}} problem
   */
  constructor (problem) {
    super(`${problem.title}: ${problem.detail ?? ''} (${problem.code})`)
    this.name = 'ApiProblem'
    this.title = problem.title
    this.status = problem.status
    this.detail = problem.detail ?? ''
    this.code = problem.code
  }
}

/** @returns {string} the stored API key, or '' */
export function getApiKey () {
  try {
    return localStorage.getItem(API_KEY_STORAGE) ?? ''
  } catch {
    return '' // storage disabled (private mode): the key then lives only in the field
  }
}

/** @param {string} key an empty key removes the stored one */
export function setApiKey (key) {
  try {
    if (key) localStorage.setItem(API_KEY_STORAGE, key)
    else localStorage.removeItem(API_KEY_STORAGE)
  } catch { /* storage disabled */ }
}

/**
 * Calls the API and returns the parsed JSON body (or a Blob when `as: 'blob'`).
 * @param {string} path e.g. '/v1/mask-maps'
 * @param {{method?: string, json?: unknown, body?: BodyInit, headers?: Record<string, string>, as?: 'json' | 'blob', signal?: AbortSignal}} [options]
 * @returns {Promise<any>}
 */
export async function callApi (path, options = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json', ...(options.headers ?? {}) }
  const key = getApiKey()
  if (key) headers.Authorization = `Bearer ${key}`
  let body = options.body
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(options.json)
  }
  let response
  try {
    response = await fetch(path, { method: options.method ?? (body ? 'POST' : 'GET'), headers, body, signal: options.signal })
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err
    throw new ApiProblem({ title: 'The service could not be reached', status: 0, detail: String(err), code: 'NETWORK_ERROR' })
  }
  if (!response.ok) throw await readProblem(response)
  if (response.status === 204) return null
  return options.as === 'blob' ? response.blob() : response.json()
}

/**
 * Turns an error response into an ApiProblem; a body that is not problem+json still yields one.
 * @param {Response} response
 */
async function readProblem (response) {
  const text = await response.text()
  try {
    const problem = JSON.parse(text)
    return new ApiProblem({
      title: problem.title ?? response.statusText,
      status: problem.status ?? response.status,
      detail: problem.detail ?? '',
      code: problem.code ?? `HTTP_${response.status}`
    })
  } catch {
    return new ApiProblem({ title: response.statusText || 'Error', status: response.status, detail: text.slice(0, 500), code: `HTTP_${response.status}` })
  }
}

/**
 * Reads a File as a data URI, the `input` form every image route accepts.
 * @param {Blob} file
 * @returns {Promise<string>}
 */
export function fileToDataUri (file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader()
    reader.onload = () => resolve(String(reader.result))
    reader.onerror = () => reject(reader.error)
    reader.readAsDataURL(file)
  })
}

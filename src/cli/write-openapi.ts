/**
 * `npm run openapi`: writes openapi/openapi.json from the route schemas (generated file: do not edit).
 * No model is loaded: the document depends only on the routes. test/cli/write-openapi.test.ts fails
 * when the committed file differs from what this produces.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { buildApp } from '../app.js'
import { ModelRegistry } from '../bundles/model-registry.js'
import { loadConfig } from '../config.js'
import { createMetrics } from '../metrics.js'

export const OPENAPI_PATH = new URL('../../openapi/openapi.json', import.meta.url)

/** The OpenAPI document as `npm run openapi` writes it (stable key order, trailing newline). */
export async function renderOpenApi (): Promise<string> {
  const config = loadConfig({ env: {}, argv: [], overrides: { dbPath: ':memory:' } })
  const app = await buildApp(config, { registry: ModelRegistry.empty(config.defaultModel), metrics: createMetrics({ defaultMetrics: false }), logger: false })
  try {
    await app.ready()
    return JSON.stringify(app.swagger(), null, 2) + '\n'
  } finally {
    await app.close()
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = await renderOpenApi()
  await mkdir(new URL('.', OPENAPI_PATH), { recursive: true })
  await writeFile(OPENAPI_PATH, text)
  console.log(`wrote ${fileURLToPath(OPENAPI_PATH)}`)
}

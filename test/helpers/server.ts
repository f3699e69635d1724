/**
 * Starts the real app on 127.0.0.1, port 0, with the bundles in models/ (no fixed port, no /work/shared),
 * warmed up, and closes it after the test. Options override the config; deps go to buildApp.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp, warmUpApp, type AppDeps } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/config.js'
import { testStoreOverrides } from './test-database.js'

export const MODELS_DIR = new URL('../../models/', import.meta.url).pathname
export const DEFAULT_MODEL = 'clmae-vit-mini-p8-64'
export const BASELINE_MODEL = 'mae-vit-mini-p8-64'

export interface TestServer {
  app: FastifyInstance
  /** http://127.0.0.1:<port> */
  url: string
  config: Config
}

export function testConfig (overrides: Partial<Config> = {}): Config {
  return loadConfig({
    env: {},
    argv: [],
    overrides: {
      host: '127.0.0.1',
      port: 0,
      modelsDir: MODELS_DIR,
      logLevel: 'silent',
      dbPath: join(mkdtempSync(join(tmpdir(), 'clmae-test-')), 'clmae.sqlite'),
      ...overrides
    }
  })
}

/**
 * Builds, listens and warms up. With a test context the server closes after that test; without one
 * (file-level `before`), the caller closes it in a file-level `after`.
 */
export async function startServer (t: Pick<TestContext, 'after'> | undefined, overrides: Partial<Config> = {}, deps: AppDeps & { warmUp?: boolean } = {}): Promise<TestServer> {
  // with CLMAE_TEST_DATABASE_URL set, a fresh PostgreSQL database per server unless the test names a store
  const store = 'databaseUrl' in overrides ? {} : await testStoreOverrides(t)
  const config = testConfig({ ...store, ...overrides })
  const app = await buildApp(config, { logger: false, ...deps })
  t?.after(() => app.close())
  await app.listen({ host: config.host, port: 0 })
  if (deps.warmUp ?? true) await warmUpApp(app)
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address')
  return { app, url: `http://127.0.0.1:${address.port}`, config }
}

/** A data URI of a file's bytes. */
export function dataUri (bytes: Buffer, mime: string): string {
  return `data:${mime};base64,${bytes.toString('base64')}`
}

export const IMAGES_DIR = new URL('../fixtures/images/', import.meta.url)

export async function postJson (url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
}

/**
 * Configuration: defaults, env vars (CLMAE_*), CLI flags (--kebab), precedence, and start-up errors that
 * name the bad setting.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, ConfigSchema, configHelp, envName, flagName, loadConfig, redactConfig } from '../src/config.js'

test('defaults: the shipped default model, ./models, CPU, batching and limits', () => {
  const config = loadConfig({ env: {}, argv: [] })
  assert.equal(config.defaultModel, 'clmae-vit-mini-p8-64')
  assert.equal(config.modelsDir, './models')
  assert.equal(config.executionProvider, 'cpu')
  assert.equal(config.dbPath, './data/clmae.sqlite')
  assert.deepEqual(config.apiKeys, [])
  assert.ok(config.maxBatchSize >= 1 && config.maxQueue >= config.maxImagesPerRequest)
})

test('every setting has a default, a description, an env var and a flag', () => {
  for (const [key, schema] of Object.entries(ConfigSchema.properties)) {
    assert.notEqual(schema.default, undefined, `${key} has no default`)
    assert.ok(typeof schema.description === 'string' && schema.description.length > 10, `${key} has no description`)
    assert.match(envName(key), /^CLMAE_[A-Z0-9_]+$/)
    assert.match(flagName(key), /^--[a-z0-9-]+$/)
    assert.ok(configHelp().includes(flagName(key)))
  }
  assert.equal(envName('maxWaitMs'), 'CLMAE_MAX_WAIT_MS')
  assert.equal(flagName('maxWaitMs'), '--max-wait-ms')
})

test('env vars are parsed by type; CLI flags win over env', () => {
  const config = loadConfig({
    env: { CLMAE_PORT: '9000', CLMAE_MAX_BATCH_SIZE: '8', CLMAE_API_KEYS: 'key-one-123, key-two-456', CLMAE_PROTECT_METRICS: 'true', CLMAE_MAX_WAIT_MS: '1.5' },
    argv: ['--port', '9100', '--execution-provider=cuda', '--protect-metrics', '--allowed-formats', 'png,jpeg']
  })
  assert.equal(config.port, 9100)
  assert.equal(config.maxBatchSize, 8)
  assert.equal(config.maxWaitMs, 1.5)
  assert.deepEqual(config.apiKeys, ['key-one-123', 'key-two-456'])
  assert.equal(config.protectMetrics, true)
  assert.equal(config.executionProvider, 'cuda')
  assert.deepEqual(config.allowedFormats, ['png', 'jpeg'])
})

test('bad values fail at start-up naming the setting, its env var and flag', () => {
  const cases: Array<[Parameters<typeof loadConfig>[0], RegExp]> = [
    [{ env: { CLMAE_PORT: 'eighty' } }, /CLMAE_PORT.*number/],
    [{ env: { CLMAE_PORT: '70000' } }, /invalid port \(CLMAE_PORT \/ --port\)/],
    [{ argv: ['--execution-provider', 'tpu'] }, /invalid executionProvider/],
    [{ argv: ['--max-batch-size', '0'] }, /invalid maxBatchSize/],
    [{ argv: ['--allowed-formats', 'png,bmp'] }, /invalid allowedFormats/],
    [{ argv: ['--no-such-flag', '1'] }, /unknown flag --no-such-flag/],
    [{ argv: ['--port'] }, /--port needs a value/],
    [{ env: { CLMAE_PROTECT_METRICS: 'maybe' } }, /CLMAE_PROTECT_METRICS: expected true or false/],
    [{ argv: ['--max-queue', '4', '--max-images-per-request', '8'] }, /maxImagesPerRequest \(8\) must not exceed maxQueue \(4\)/],
    [{ argv: ['--api-keys', 'short'] }, /invalid apiKeys/]
  ]
  for (const [options, pattern] of cases) {
    assert.throws(() => loadConfig({ env: {}, argv: [], ...options }), (e: unknown) => e instanceof ConfigError && pattern.test(e.message), `expected ${pattern}`)
  }
})

test('the printed config hides API keys', () => {
  const config = loadConfig({ env: { CLMAE_API_KEYS: 'secret-key-123' }, argv: [] })
  const printed = JSON.stringify(redactConfig(config))
  assert.ok(!printed.includes('secret-key-123'))
  assert.ok(printed.includes('<redacted>'))
})

test('the printed config hides the database URL (it may carry a password); empty stays empty', () => {
  const config = loadConfig({ env: { CLMAE_DATABASE_URL: 'postgres://clmae:pg-pass-456@db:5432/clmae' }, argv: [] })
  const printed = JSON.stringify(redactConfig(config))
  assert.ok(!printed.includes('pg-pass-456'))
  assert.equal(redactConfig(config).databaseUrl, '<redacted>')
  assert.equal(redactConfig(loadConfig({ env: {}, argv: [] })).databaseUrl, '')
})

test('the README settings table is current (npm run docs:readme)', async () => {
  const { readFileSync } = await import('node:fs')
  const { renderConfigTable } = await import('../src/cli/write-readme-tables.js')
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  assert.ok(readme.includes(renderConfigTable()), 'README settings table is stale: run npm run docs:readme')
})

test('a rejected secret is not printed in the error', () => {
  assert.throws(() => loadConfig({ env: { CLMAE_API_KEYS: 'goodkey123456,sh0rt!' }, argv: [] }), (e: Error) => {
    assert.match(e.message, /apiKeys/)
    assert.doesNotMatch(e.message, /sh0rt/)
    return true
  })
})

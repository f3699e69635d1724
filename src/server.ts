/**
 * The entry point (`npm start`): resolve the config (env CLMAE_* and --flags; --help lists them), build
 * the app, listen, warm up, then serve. SIGTERM / SIGINT: /readyz answers 503, the listener stops taking
 * connections, queued work finishes (at most shutdownTimeoutMs), the app closes (sessions, stores), exit.
 */
import { quiesceInferenceThread } from './inference/session-thread.js'
import { buildApp, warmUpApp } from './app.js'
import { ConfigError, configHelp, loadConfig, redactConfig, type Config } from './config.js'

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(configHelp())
    return
  }
  let config: Config
  try {
    config = loadConfig({ argv })
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`clmae-serve: configuration error: ${error.message}`)
      process.exit(2)
    }
    throw error
  }
  const app = await buildApp(config)
  app.log.info({ config: redactConfig(config) }, 'effective configuration')

  let stopping = false
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return
    stopping = true
    app.lifecycle.draining = true
    app.log.info({ signal }, 'draining: finishing queued work')
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), config.shutdownTimeoutMs).unref())
    // app.close() stops accepting connections and waits for in-flight requests; the drain waits for queued images
    const outcome = await Promise.race([Promise.all([app.models.drain(), app.close()]).then(() => 'drained' as const), timeout])
    if (outcome === 'timeout') {
      app.log.warn({ shutdownTimeoutMs: config.shutdownTimeoutMs }, 'shutdown timeout: exiting with work still queued')
      await quiesceInferenceThread() // the batch running now finishes: exiting inside it would abort the process
    }
    app.log.info('bye')
    process.exit(0)
  }
  process.once('SIGTERM', () => { void stop('SIGTERM') })
  process.once('SIGINT', () => { void stop('SIGINT') })

  await app.listen({ host: config.host, port: config.port })
  await warmUpApp(app)
  app.log.info({ models: app.models.list().map((m) => ({ id: m.id, executionProvider: m.executionProvider })) }, 'ready')
}

main().catch((error: unknown) => {
  console.error(`clmae-serve: failed to start: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})

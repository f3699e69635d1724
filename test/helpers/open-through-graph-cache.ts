/**
 * A separate process opening one session through the ort graph cache, as a replica does at start-up:
 * `node --import tsx test/helpers/open-through-graph-cache.ts <graph.onnx> <cache dir> <source sha256>`
 * prints the cache report as one JSON line. Used by the graph-cache tests for concurrent writers and
 * for a directory this process may not write (run as another user when the tests run as root).
 */
import { openOrtSession } from '../../src/inference/onnx-backend.js'

const [modelPath, dir, sha256] = process.argv.slice(2)
const opened = await openOrtSession(modelPath, { executionProvider: 'cpu', intraOpThreads: 1, graphCache: { dir, sourceSha256: [sha256] } })
await opened.session.release()
console.log(JSON.stringify(opened.graphCache))

/**
 * Reads and verifies one bundle directory: manifest.json valid against the committed schema, every graph
 * file, and every external-data file of a graph, present with the manifest's byte size and sha256. Any
 * mismatch refuses the bundle with a BundleError whose message names the file.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { BundleError } from './bundle-error.js'
import { manifestErrors, type FileSpec, type GraphName, type Manifest } from './manifest.js'

export interface VerifiedBundle {
  dir: string
  manifest: Manifest
  /** absolute path of each graph file present in the manifest */
  graphPaths: Partial<Record<GraphName, string>>
}

export async function sha256File (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

export async function readBundle (dir: string): Promise<VerifiedBundle> {
  const manifestPath = join(dir, 'manifest.json')
  let text: string
  try {
    text = await readFile(manifestPath, 'utf8')
  } catch (error) {
    throw new BundleError('BUNDLE_MANIFEST_MISSING', `${manifestPath}: cannot read the manifest (${(error as Error).message})`, { cause: error })
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new BundleError('BUNDLE_MANIFEST_INVALID', `${manifestPath}: not valid JSON (${(error as Error).message})`, { cause: error })
  }
  const errors = manifestErrors(value)
  if (errors.length > 0) {
    throw new BundleError('BUNDLE_MANIFEST_INVALID', `${manifestPath}: does not match training/bundle-format/manifest.schema.json: ${errors.slice(0, 5).join('; ')}`)
  }
  const manifest = value as Manifest
  const graphPaths: Partial<Record<GraphName, string>> = {}
  for (const [graph, spec] of Object.entries(manifest.graphs) as Array<[GraphName, Manifest['graphs']['encoder']]>) {
    await verifyFile(dir, manifestPath, spec, `graph file of ${graph}`)
    for (const data of spec.external_data ?? []) await verifyFile(dir, manifestPath, data, `external data of ${graph}`)
    graphPaths[graph] = join(dir, spec.file)
  }
  return { dir, manifest, graphPaths }
}

/** The file exists with the manifest's byte size and sha256; a BundleError naming it otherwise. */
async function verifyFile (dir: string, manifestPath: string, spec: FileSpec, what: string): Promise<void> {
  const path = join(dir, spec.file)
  let bytes: number
  try {
    bytes = (await stat(path)).size
  } catch (error) {
    throw new BundleError('BUNDLE_GRAPH_MISSING', `${path}: ${what} is missing (${(error as Error).message})`, { cause: error })
  }
  if (bytes !== spec.bytes) {
    throw new BundleError('BUNDLE_SIZE_MISMATCH', `${path}: ${bytes} bytes, but ${manifestPath} says ${spec.bytes}`)
  }
  const actual = await sha256File(path)
  if (actual !== spec.sha256) {
    throw new BundleError('BUNDLE_SHA256_MISMATCH', `${path}: sha256 ${actual} does not match ${spec.sha256} in ${manifestPath}; refusing the bundle`)
  }
}

/**
 * Reads and verifies one bundle directory: manifest.json valid against the committed schema, every graph
 * file, and every external-data file of a graph, present with the manifest's byte size and sha256. Any
 * mismatch refuses the bundle with a BundleError whose message names the file.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, readFile } from 'node:fs/promises'
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
  const inconsistency = manifestInconsistency(manifest)
  if (inconsistency !== undefined) throw new BundleError('BUNDLE_MANIFEST_INVALID', `${manifestPath}: ${inconsistency}; refusing the bundle`)
  const graphPaths: Partial<Record<GraphName, string>> = {}
  for (const [graph, spec] of Object.entries(manifest.graphs) as Array<[GraphName, Manifest['graphs']['encoder']]>) {
    await verifyFile(dir, manifestPath, spec, `graph file of ${graph}`)
    for (const data of spec.external_data ?? []) await verifyFile(dir, manifestPath, data, `external data of ${graph}`)
    await checkExternalLocations(join(dir, spec.file), new Set((spec.external_data ?? []).map((d) => d.file)))
    graphPaths[graph] = join(dir, spec.file)
  }
  return { dir, manifest, graphPaths }
}

/**
 * What the schema cannot say: the numbers the service computes with must agree, or a request would
 * fail deep inside preprocessing or the patch grid (a 500) instead of the bundle being refused at start.
 */
function manifestInconsistency (m: Manifest): string | undefined {
  const t = m.eval_transform
  if (t.resize_shorter_side < t.center_crop) return `eval_transform.resize_shorter_side ${t.resize_shorter_side} is smaller than center_crop ${t.center_crop}`
  if (t.center_crop !== m.image_size) return `eval_transform.center_crop ${t.center_crop} differs from image_size ${m.image_size}`
  if (m.grid[0] * m.patch_size !== m.image_size || m.grid[1] * m.patch_size !== m.image_size) return `grid ${m.grid.join(' x ')} of ${m.patch_size}-pixel patches does not tile image_size ${m.image_size}`
  if (m.grid[0] * m.grid[1] !== m.num_patches) return `num_patches ${m.num_patches} differs from grid ${m.grid.join(' x ')}`
  return undefined
}

/**
 * The external-data files a graph names must be exactly the ones the manifest lists (and hashes):
 * onnxruntime opens whatever locations the graph holds, so an unlisted file, a path with a separator or
 * `..`, would be read unverified, possibly from outside the bundle. The locations are found by scanning
 * the graph's bytes for the protobuf encoding of an external-data entry {key: "location", value}
 * (StringStringEntryProto: 0x0a 0x08 "location" 0x12 <varint length> <value>), streamed with an overlap
 * so an entry split across two reads is still seen. A match inside raw weights would need these 11
 * bytes by chance and only refuses the bundle, never accepts one.
 */
export async function checkExternalLocations (graphPath: string, listed: Set<string>): Promise<void> {
  const marker = Buffer.from([0x0a, 0x08, ...Buffer.from('location'), 0x12])
  const found = new Set<string>()
  let carry = Buffer.alloc(0)
  for await (const chunk of createReadStream(graphPath, { highWaterMark: 4 * 1024 * 1024 })) {
    const buf = Buffer.concat([carry, chunk as Buffer])
    let at = buf.indexOf(marker)
    let consumedTo = Math.max(0, buf.length - 1024) // keep the tail: an entry may continue in the next read
    while (at !== -1) {
      let i = at + marker.length
      let length = 0
      for (let shift = 0; i < buf.length && shift < 21; shift += 7) { const b = buf[i++]; length |= (b & 0x7f) << shift; if ((b & 0x80) === 0) break }
      if (i + length > buf.length) { consumedTo = Math.min(consumedTo, at); break } // incomplete: look again with the next read
      found.add(buf.subarray(i, i + length).toString('utf8'))
      at = buf.indexOf(marker, i + length)
    }
    carry = buf.subarray(consumedTo)
  }
  for (const location of found) {
    if (!listed.has(location) || /[/\\]|^\.\.?$/.test(location)) {
      throw new BundleError('BUNDLE_MANIFEST_INVALID', `${graphPath} reads external data from ${JSON.stringify(location)}, which the manifest does not list under external_data (or is not a plain file name in the bundle); refusing the bundle`)
    }
  }
  for (const name of listed) {
    if (!found.has(name)) throw new BundleError('BUNDLE_MANIFEST_INVALID', `${graphPath} does not read the external data ${JSON.stringify(name)} the manifest lists`)
  }
}

/** The file exists with the manifest's byte size and sha256; a BundleError naming it otherwise. */
async function verifyFile (dir: string, manifestPath: string, spec: FileSpec, what: string): Promise<void> {
  const path = join(dir, spec.file)
  let bytes: number
  try {
    const info = await lstat(path)
    if (!info.isFile()) throw new BundleError('BUNDLE_MANIFEST_INVALID', `${path}: ${what} is not a regular file (a symlink or a directory); refusing the bundle`)
    bytes = info.size
  } catch (error) {
    if (error instanceof BundleError) throw error
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

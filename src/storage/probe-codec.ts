/**
 * A fitted probe as stored: `meta` (JSON: labels, dim, method and its scalars) and `data` (its arrays as
 * little-endian float32, kNN's label indices and example ids as int32), so reading a classifier never
 * parses megabytes of JSON (a kNN probe holds every example embedding: 5,000 x 768 is 15 MB here, about
 * 60 MB as JSON text). Float32 like the stored embeddings: predictions move by about 1e-7.
 */
import { endianness } from 'node:os'
import type { FittedProbe, ProbeState } from '../fewshot/classifiers.js'

if (endianness() !== 'LE') throw new Error('the probe codec writes host-order float32 and assumes a little-endian host')

type ProbeMeta =
  | { labels: string[], dim: number, method: 'logreg', C: number }
  | { labels: string[], dim: number, method: 'knn', k: number, n: number }
  | { labels: string[], dim: number, method: 'centroid', temperature: number }

export interface EncodedProbe { meta: string, data: Buffer }

function float32 (rows: readonly (readonly number[])[]): Float32Array {
  const width = rows.length === 0 ? 0 : rows[0].length
  const out = new Float32Array(rows.length * width)
  rows.forEach((row, i) => out.set(row, i * width))
  return out
}

function concat (parts: (Float32Array | Int32Array)[]): Buffer {
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)))
}

export function encodeProbe (probe: FittedProbe): EncodedProbe {
  const { labels, dim } = probe
  const s = probe.state
  if (s.method === 'logreg') {
    return { meta: JSON.stringify({ labels, dim, method: s.method, C: s.C } satisfies ProbeMeta), data: concat([float32([s.mean, s.std]), float32(s.weights), Float32Array.from(s.bias)]) }
  }
  if (s.method === 'centroid') {
    return { meta: JSON.stringify({ labels, dim, method: s.method, temperature: s.temperature } satisfies ProbeMeta), data: concat([float32(s.centroids)]) }
  }
  return {
    meta: JSON.stringify({ labels, dim, method: s.method, k: s.k, n: s.examples.length } satisfies ProbeMeta),
    data: concat([float32(s.examples), Int32Array.from(s.example_labels), Int32Array.from(s.example_ids)])
  }
}

/** The labels (and dim) alone, for views that do not need the arrays. */
export function probeLabels (meta: string): string[] {
  return (JSON.parse(meta) as ProbeMeta).labels
}

export function decodeProbe (meta: string, data: Uint8Array): FittedProbe {
  const m = JSON.parse(meta) as ProbeMeta
  // copy once into an aligned buffer (a Buffer from the driver may start at any offset)
  const bytes = new Uint8Array(data.byteLength)
  bytes.set(data)
  let offset = 0
  const take = (count: number, kind: 'f32' | 'i32' = 'f32'): Float32Array | Int32Array => {
    const view = kind === 'f32' ? new Float32Array(bytes.buffer, offset, count) : new Int32Array(bytes.buffer, offset, count)
    offset += count * 4
    return view
  }
  const rows = (count: number): number[][] => Array.from({ length: count }, () => Array.from(take(m.dim)))
  const K = m.labels.length
  let state: ProbeState
  if (m.method === 'logreg') {
    const [mean, std] = rows(2)
    state = { method: 'logreg', C: m.C, mean, std, weights: rows(K), bias: Array.from(take(K)) }
  } else if (m.method === 'centroid') {
    state = { method: 'centroid', temperature: m.temperature, centroids: rows(K) }
  } else {
    const examples = rows(m.n)
    state = { method: 'knn', k: m.k, examples, example_labels: Array.from(take(m.n, 'i32')), example_ids: Array.from(take(m.n, 'i32')) }
  }
  if (offset !== bytes.byteLength) throw new Error(`stored probe holds ${bytes.byteLength} bytes, its meta describes ${offset}. This is a bug.`)
  return { labels: m.labels, dim: m.dim, state }
}

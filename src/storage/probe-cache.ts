/**
 * Decoded fitted probes by (classifier id, version), least recently used first out, bounded in bytes
 * (--classifier-cache-bytes). A refit or delete on any replica changes or removes the version, so a
 * predict that reads the current version first (one indexed row) never uses a stale entry; entries of
 * old versions simply age out. Hand-written: a Map in insertion order is an LRU in a dozen lines.
 */
import type { FittedProbe } from '../fewshot/classifiers.js'

/** Approximate heap bytes of a decoded probe: 8 per number (arrays of doubles) plus the label strings. */
export function probeBytes (probe: FittedProbe): number {
  const s = probe.state
  const rows = (r: number[][]): number => r.reduce((sum, row) => sum + row.length, 0)
  const numbers = s.method === 'logreg'
    ? s.mean.length + s.std.length + rows(s.weights) + s.bias.length
    : s.method === 'centroid' ? rows(s.centroids) : rows(s.examples) + s.example_labels.length + s.example_ids.length
  return numbers * 8 + probe.labels.reduce((sum, l) => sum + 2 * l.length + 32, 0) + 256
}

export class ProbeCache {
  private readonly entries = new Map<string, { probe: FittedProbe, bytes: number }>()
  private used = 0
  hits = 0
  misses = 0

  constructor (private readonly maxBytes: number) {}

  get bytes (): number { return this.used }
  get size (): number { return this.entries.size }

  get (id: string, version: number): FittedProbe | undefined {
    const key = `${id}@${version}`
    const entry = this.entries.get(key)
    if (entry === undefined) {
      this.misses++
      return undefined
    }
    this.hits++
    this.entries.delete(key) // re-insert: most recently used last
    this.entries.set(key, entry)
    return entry.probe
  }

  set (id: string, version: number, probe: FittedProbe): void {
    const bytes = probeBytes(probe)
    if (bytes > this.maxBytes) return // larger than the whole cache: not kept
    const key = `${id}@${version}`
    const old = this.entries.get(key)
    if (old !== undefined) {
      this.used -= old.bytes
      this.entries.delete(key)
    }
    this.entries.set(key, { probe, bytes })
    this.used += bytes
    for (const [k, e] of this.entries) {
      if (this.used <= this.maxBytes) break
      this.entries.delete(k)
      this.used -= e.bytes
    }
  }
}

/**
 * The CPU line printed beside every figure: the model name and the SIMD flags that decide which int8 and
 * fp32 kernels onnxruntime's MLAS can use (AVX2 u8s8 VPMADDUBSW, AVX-VNNI / AVX512-VNNI VPDPBUSD, AMX).
 */
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'

const SIMD_FLAGS = ['sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx_vnni', 'amx_int8']

export function cpuLine (): string {
  let info = ''
  try { info = readFileSync('/proc/cpuinfo', 'utf8') } catch { return `unknown CPU (no /proc/cpuinfo), ${availableParallelism()} cores` }
  const model = /^model name\s*:\s*(.*)$/m.exec(info)?.[1] ?? 'unknown'
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(info)?.[1] ?? '').split(/\s+/))
  const simd = SIMD_FLAGS.filter((f) => flags.has(f))
  const missing = ['avx512f', 'avx512_vnni', 'avx_vnni'].filter((f) => !flags.has(f))
  return `${model}, ${availableParallelism()} cores; flags: ${simd.join(' ') || 'none of the SIMD ones'}${missing.length > 0 ? ` (no ${missing.join(', ')})` : ''}`
}

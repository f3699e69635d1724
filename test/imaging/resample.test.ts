/**
 * src/imaging/resample.ts against Pillow's Image.resize (cases written by training/tools/dump_eval_transform.py):
 * exact, 0 levels of difference, for both filters, both pass orders, up- and downscales and cropped windows.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { resampleRgb, verticalFirst, type ResampleFilter } from '../../src/imaging/resample.js'

interface Case { in_size: [number, number], out_size: [number, number], filter: ResampleFilter, src_base64: string, out_base64: string }
const { resample_cases: cases } = JSON.parse(readFileSync(new URL('../fixtures/preprocess-reference.json', import.meta.url), 'utf8')) as { resample_cases: Case[] }

test('the cases exercise both pass orders', () => {
  const orders = new Set(cases.map((c) => verticalFirst(c.in_size[0], c.in_size[1], c.out_size[0], c.out_size[1])))
  assert.deepEqual([...orders].sort(), [false, true])
})

for (const c of cases) {
  const [inW, inH] = c.in_size
  const [outW, outH] = c.out_size
  test(`${c.filter} ${inW}x${inH} -> ${outW}x${outH} equals Pillow`, () => {
    const src = { data: new Uint8Array(Buffer.from(c.src_base64, 'base64')), width: inW, height: inH }
    const expected = new Uint8Array(Buffer.from(c.out_base64, 'base64'))
    const full = resampleRgb(src, outW, outH, c.filter)
    assert.deepEqual(full.data, expected)
    // a window gives the same pixels as cropping the full result
    const win = { left: Math.floor(outW / 3), top: Math.floor(outH / 4), width: Math.ceil(outW / 2), height: Math.ceil(outH / 2) }
    const part = resampleRgb(src, outW, outH, c.filter, win)
    for (let y = 0; y < win.height; y++) {
      const row = expected.subarray(((win.top + y) * outW + win.left) * 3, ((win.top + y) * outW + win.left + win.width) * 3)
      assert.deepEqual(part.data.subarray(y * win.width * 3, (y + 1) * win.width * 3), row, `window row ${y}`)
    }
  })
}

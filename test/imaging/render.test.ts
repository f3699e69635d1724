import { test } from 'node:test'
import assert from 'node:assert/strict'
import sharp from 'sharp'
import { blend, denormalize, displayScale, encodePng, enlarge, greyRemoved, heatmapImage, sideBySide, viridis } from '../../src/imaging/render.js'

test('viridis: fixed scale, endpoints and clamping', () => {
  assert.deepEqual(viridis(0), [0x44, 0x01, 0x54])
  assert.deepEqual(viridis(1), [0xfd, 0xe7, 0x25])
  assert.deepEqual(viridis(0.5), [0x21, 0x91, 0x8c])
  assert.deepEqual(viridis(-3), viridis(0))
  assert.deepEqual(viridis(7), viridis(1))
  assert.deepEqual(viridis(Number.NaN), viridis(0))
  // luminance rises monotonically (what makes the scale readable without a legend)
  let last = -1
  for (let v = 0; v <= 1; v += 0.05) {
    const [r, g, b] = viridis(v)
    const y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    assert.ok(y > last)
    last = y
  }
})

test('display scale reaches at least 256 px with an integer factor', () => {
  assert.equal(displayScale(64), 4)
  assert.equal(displayScale(224), 2)
  assert.equal(displayScale(300), 1)
})

test('denormalize inverts (x / 255 - mean) / std and clamps', () => {
  const mean = [0.5, 0.5, 0.5]
  const std = [0.25, 0.25, 0.25]
  const image = new Float32Array(3).fill(0)
  image[1] = 10 // far above 1 after de-normalising
  image[2] = -10
  const out = denormalize(image, 1, mean, std)
  assert.deepEqual(Array.from(out.data), [128, 255, 0])
})

test('heatmap cells, enlargement, blending, greying and side by side', async () => {
  const heat = heatmapImage([0, 1, 1, 0], 2, 2, 3) // 2x2 grid, 3 px cells
  assert.equal(heat.width, 6)
  assert.deepEqual(Array.from(heat.data.subarray(0, 3)), viridis(0))
  assert.deepEqual(Array.from(heat.data.subarray(3 * 3, 3 * 3 + 3)), viridis(1)) // x = 3: second cell
  const base = { width: 2, height: 2, data: new Uint8Array(12).fill(100) }
  const big = enlarge(base, 3)
  assert.deepEqual([big.width, big.height, big.data.length], [6, 6, 108])
  const mixed = blend(big, heat, 0.5)
  assert.equal(mixed.data[0], Math.round(0.5 * 0x44 + 0.5 * 100))
  const grey = greyRemoved(base, Uint8Array.from([0, 1, 0, 0]), 2, 1)
  assert.deepEqual(Array.from(grey.data.subarray(0, 6)), [100, 100, 100, 128, 128, 128])
  const strip = sideBySide([big, big], 4)
  assert.equal(strip.width, 16)
  assert.deepEqual(Array.from(strip.data.subarray(6 * 3, 6 * 3 + 3)), [255, 255, 255]) // the gap is white
  const png = await encodePng(strip)
  const meta = await sharp(png).metadata()
  assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', 16, 6, 3])
})

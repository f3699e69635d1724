/**
 * Decoding untrusted bytes (src/imaging/decode.ts) on the fixtures of test/fixtures/images/
 * (written by test/fixtures/make-images.ts): each bad input gets its own IMAGE_* code, odd ones decode.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { decodeRgb, inspectImage } from '../../src/imaging/decode.js'
import { ApiError, type ErrorCode } from '../../src/errors.js'

const LIMITS = { maxImageBytes: 1_000_000, maxImagePixels: 40_000_000, minImageSide: 8, allowedFormats: ['jpeg', 'png', 'webp', 'gif'] }
const read = (name: string) => readFileSync(new URL(`../fixtures/images/${name}`, import.meta.url))

async function expectCode (bytes: Buffer, code: ErrorCode, limits = LIMITS): Promise<void> {
  await assert.rejects((async () => decodeRgb(await inspectImage(bytes, limits)))(), (e: unknown) => {
    assert.ok(e instanceof ApiError, String(e))
    assert.equal(e.code, code, e.message)
    return true
  })
}

test('small PNG and WebP decode to RGB', async () => {
  for (const name of ['gradient.png', 'gradient.webp']) {
    const image = await decodeRgb(await inspectImage(read(name), LIMITS))
    assert.deepEqual([image.width, image.height, image.data.length], [48, 40, 48 * 40 * 3])
    assert.deepEqual(Array.from(image.data.subarray(0, 3)), [0, 0, 0]) // top-left of the gradient
  }
})

test('EXIF orientation 6 is applied: 48 x 32 stored, 32 x 48 decoded', async () => {
  const source = await inspectImage(read('exif-rotated.jpg'), LIMITS)
  assert.deepEqual([source.width, source.height], [32, 48])
  const image = await decodeRgb(source)
  assert.deepEqual([image.width, image.height], [32, 48])
  // rotated 90 degrees clockwise: the stored bottom-left (red 0, green 255) is now top-left
  assert.ok(image.data[0] < 40 && image.data[1] > 215, `top-left ${Array.from(image.data.subarray(0, 3))}`)
})

test('an animated GIF gives its first frame only', async () => {
  const image = await decodeRgb(await inspectImage(read('animated.gif'), LIMITS))
  assert.deepEqual([image.width, image.height], [40, 40])
  const last = image.data.subarray(image.data.length - 3)
  assert.deepEqual(Array.from(last), [255, 0, 0], 'still the red first frame at the bottom')
})

test('bad inputs get their own codes', async () => {
  await expectCode(read('truncated.jpg'), 'IMAGE_UNREADABLE')
  await expectCode(read('huge-declared.png'), 'IMAGE_TOO_MANY_PIXELS')
  await expectCode(read('not-an-image.txt'), 'IMAGE_UNREADABLE')
  await expectCode(read('tiny.png'), 'IMAGE_TOO_SMALL')
  await expectCode(Buffer.alloc(0), 'IMAGE_MISSING')
  await expectCode(read('gradient.png'), 'IMAGE_TOO_LARGE', { ...LIMITS, maxImageBytes: 100 })
  await expectCode(read('gradient.webp'), 'IMAGE_FORMAT_UNSUPPORTED', { ...LIMITS, allowedFormats: ['jpeg', 'png'] })
  await expectCode(read('gradient.png'), 'IMAGE_TOO_MANY_PIXELS', { ...LIMITS, maxImagePixels: 1000 })
})

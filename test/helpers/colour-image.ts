/** Test images for classifiers: a colour with a seeded diagonal pattern, so examples of one label differ a little. */
import sharp from 'sharp'

/** A 64x64 PNG (base64) of `rgb` with a diagonal pattern chosen by `variant`. */
export async function colourImage (rgb: [number, number, number], variant: number): Promise<string> {
  const side = 64
  const raw = Buffer.alloc(side * side * 3)
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const wave = ((x + y * (variant + 1)) % 16) * 2
      for (let c = 0; c < 3; c++) raw[(y * side + x) * 3 + c] = Math.max(0, Math.min(255, rgb[c] + wave - 16))
    }
  }
  return (await sharp(raw, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer()).toString('base64')
}

/**
 * A format-2 bundle without a decoder, made in TypeScript from a shipped format-1 bundle: its encoder.onnx
 * copied and a manifest as clmae.import_checkpoint writes it for an encoder-only checkpoint (no decoder,
 * no masking module, norm_pix_loss null). Lets tests load format 2 without Python; the bundles that
 * import_checkpoint itself writes are served in test/bundles/imported-bundle.test.ts.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ManifestV1, ManifestV2 } from '../../src/bundles/manifest.js'

export function writeEncoderOnlyBundle (sourceDir: string, targetDir: string, name: string): ManifestV2 {
  const v1 = JSON.parse(readFileSync(join(sourceDir, 'manifest.json'), 'utf8')) as ManifestV1
  mkdirSync(targetDir, { recursive: true })
  copyFileSync(join(sourceDir, v1.graphs.encoder.file), join(targetDir, v1.graphs.encoder.file))
  const from = `test: the encoder of ${v1.name} (format 1)`
  const decided = (value: unknown): { value: unknown, from: string } => ({ value, from })
  const manifest: ManifestV2 = {
    format_version: 2,
    name,
    method: 'mae',
    source: { format: 'mae', file: `${v1.name}-encoder.pth`, sha256: v1.graphs.encoder.sha256 },
    architecture: {
      image_size: decided(v1.image_size),
      patch_size: decided(v1.patch_size),
      embed_dim: decided(v1.dims.embed_dim),
      depth: decided(v1.dims.depth),
      num_heads: decided(v1.dims.num_heads),
      mlp_ratio: decided(4),
      decoder_embed_dim: decided(null),
      decoder_depth: decided(null),
      decoder_num_heads: decided(null),
      decoder_mlp_ratio: decided(null),
      masking_depth: decided(null),
      masking_num_heads: decided(null),
      masking_mlp_ratio: decided(null),
      mask_ratio: decided(v1.mask_ratio),
      norm_pix_loss: decided(null),
      norm_pix_eps: decided(v1.norm_pix_eps),
      eval_transform: decided(v1.eval_transform)
    },
    image_size: v1.image_size,
    patch_size: v1.patch_size,
    grid: v1.grid,
    num_patches: v1.num_patches,
    dims: { ...v1.dims, decoder_embed_dim: null, decoder_depth: null, decoder_num_heads: null, masking_depth: null, masking_num_heads: null },
    mask_ratio: v1.mask_ratio,
    norm_pix_loss: null,
    norm_pix_eps: v1.norm_pix_eps,
    eval_transform: v1.eval_transform,
    opset: v1.opset,
    graphs: { encoder: v1.graphs.encoder },
    created_at: v1.created_at
  }
  writeFileSync(join(targetDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
  return manifest
}

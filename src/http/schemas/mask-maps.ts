/**
 * POST /v1/mask-maps: request and response. The descriptions are the API's definition of each figure
 * (they become the OpenAPI document). Pieces shared with /v1/reconstructions (grid, preprocessing,
 * sha256s) are defined here.
 */
import { Type, type Static } from '@sinclair/typebox'
import { ModelField } from './common.js'

export const MaskRatioField = Type.Number({
  exclusiveMinimum: 0,
  exclusiveMaximum: 1,
  description: 'share of patches to remove, r. K = floor(L * (1 - r)) patches are kept (as in training); r must keep at least 1 and remove at least 1 patch, else 400 MASK_RATIO_INVALID. Default: the bundle\'s training mask ratio.',
  examples: [0.75]
})

export const GridSchema = Type.Object({
  rows: Type.Integer({ description: 'patch grid rows = H / p' }),
  cols: Type.Integer({ description: 'patch grid cols = W / p' })
}, { description: 'the patch grid; patch index t = row * cols + col (row-major). Every grid below is rows x cols, outer array = rows.' })

export const GraphSha256Schema = Type.Record(Type.String(), Type.String(), { description: 'graph name (encoder, decoder, keep_scores) -> sha256 hex of its ONNX file, verified at load' })

export const PreprocessingSchema = Type.Object({
  color_mode: Type.Literal('RGB'),
  resize_shorter_side: Type.Integer(),
  center_crop: Type.Integer(),
  interpolation: Type.Union([Type.Literal('bicubic'), Type.Literal('bilinear')]),
  antialias: Type.Boolean(),
  mean: Type.Array(Type.Number()),
  std: Type.Array(Type.Number()),
  resize: Type.Union([Type.Literal('pillow'), Type.Literal('sharp')], { description: 'the resize that ran: pillow = the exact transform (Pillow\'s resampling, equal to training); sharp = the fast path (libvips, JPEG shrink-on-load); CLMAE_PREPROCESS_RESIZE, upscales always pillow' }),
  input: Type.Object({
    format: Type.String({ description: 'decoded format (sharp name)' }),
    width: Type.Integer({ description: 'after EXIF orientation' }),
    height: Type.Integer({ description: 'after EXIF orientation' })
  })
}, { description: 'the evaluation transform applied (the bundle\'s manifest eval_transform: decode, EXIF orientation, first frame, RGB, resize of the shorter side with Pillow\'s resampling, centre crop, (x / 255 - mean) / std) and the input it was applied to' })

export const MaskMapsOptionsSchema = Type.Object({
  model: Type.Optional(ModelField),
  mask_ratio: Type.Optional(MaskRatioField),
  heatmap: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('png'), Type.Literal('overlay')], {
    default: 'none',
    description: 'none; png: heatmap of keep_score alone; overlay: the heatmap blended at 50% over the model\'s input crop. Both on a fixed viridis scale (keep_score 0 = #440154 dark purple, 1 = #fde725 yellow), one flat square per patch, enlarged by nearest neighbour to at least 256 px (4 x 64 for a 64 px model input).'
  }))
}, { additionalProperties: false })

export type MaskMapsOptions = Static<typeof MaskMapsOptionsSchema>

export const MaskMapsJsonRequestSchema = Type.Composite([
  Type.Object({ input: Type.String({ minLength: 1, description: 'one image, base64 or a data URI (data:image/png;base64,...); multipart: one file part; or the raw image as the body with the options in the query string' }) }),
  MaskMapsOptionsSchema
], { additionalProperties: false, examples: [{ input: 'data:image/png;base64,iVBORw0KGgo...', mask_ratio: 0.75, heatmap: 'overlay' }] })

export const MaskMapsMultipartSchema = Type.Object({
  input: Type.String({ format: 'binary', description: 'one file part' }),
  model: Type.Optional(Type.String()),
  mask_ratio: Type.Optional(Type.String()),
  heatmap: Type.Optional(Type.String())
}, { description: 'the image as one file part; options as text fields with the JSON names' })

const NumberGrid = Type.Array(Type.Array(Type.Number()))

export const KeepScoreSummarySchema = Type.Object({
  mean: Type.Number({ description: 'mean keep_score over the L patches' }),
  std: Type.Number({ description: 'population standard deviation of keep_score' }),
  min: Type.Number(),
  max: Type.Number(),
  entropy_bits: Type.Number({ description: 'Shannon entropy, in bits, of q_t = keep_score_t / sum(keep_score): log2(L) when every patch scores the same, lower when a few patches hold the scores' }),
  top_decile_share: Type.Number({ description: 'share of sum(keep_score) held by the ceil(L / 10) highest-scoring patches (0.1 when uniform)' })
})

export const MaskMapsResponseSchema = Type.Object({
  model: Type.String(),
  model_sha256: Type.String({ description: 'sha256 of the keep_scores graph (the masking module) that produced keep_score' }),
  graph_sha256: GraphSha256Schema,
  grid: GridSchema,
  patch_size: Type.Integer({ description: 'p, pixels per patch side at the model input' }),
  mask_ratio: Type.Number({ description: 'the mask ratio r used for `mask`' }),
  num_kept: Type.Integer({ description: 'K = floor(L * (1 - r))' }),
  keep_score: NumberGrid,
  mask_probability: NumberGrid,
  mask: Type.Array(Type.Array(Type.Integer({ minimum: 0, maximum: 1 }))),
  summary: KeepScoreSummarySchema,
  preprocessing: PreprocessingSchema,
  heatmap_png: Type.Optional(Type.String({ description: 'base64 PNG, when heatmap is png or overlay' }))
}, {
  description: 'keep_score (rows x cols): the masking module\'s output in (0, 1) for each patch, high = keep (visible to the encoder). ' +
    'mask_probability = 1 - keep_score. mask: 1 = removed, 0 = kept; the K patches with the highest keep_score are kept (K = floor(L * (1 - mask_ratio)); ties broken by the lower patch index), exactly the mask the MAE trained under at its ratio.'
})

export type MaskMapsResponse = Static<typeof MaskMapsResponseSchema>

/**
 * /v1/classifiers: request and response schemas of the few-shot classifier routes
 * (src/http/routes/classifiers.ts).
 */
import { Type, type Static } from '@sinclair/typebox'
import { ImageStringSchema, ModelField } from './common.js'

export const ClassifierIdParamsSchema = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64, description: 'classifier id (clf_...)' })
})
export type ClassifierIdParams = Static<typeof ClassifierIdParamsSchema>

const MethodField = Type.Union([Type.Literal('logreg'), Type.Literal('knn'), Type.Literal('centroid')], {
  default: 'logreg',
  description: 'logreg: multinomial logistic regression on standardised embeddings, L2 strength C chosen by stratified k-fold CV (k = min(5, smallest class count)) over C in {0.001, 0.01, 0.1, 1, 10} when every label has at least 2 examples, else C = 1; knn: cosine k-nearest neighbours (vote share); centroid: cosine to the class means, softmax(cos / 0.1)'
})
const PoolingField = Type.Union([Type.Literal('cls'), Type.Literal('mean')], { default: 'mean', description: 'pooling of the embeddings the classifier is fitted on (as POST /v1/embeddings)' })
const LabelField = Type.String({ description: 'class label (1 to CLMAE_CLASSIFIER_MAX_LABEL_CHARS characters)' })
const EmbeddingField = Type.Array(Type.Number(), { minItems: 1, description: 'a precomputed embedding of the pinned model (D values, same pooling and normalisation)' })

/** Options of create and add-examples, shared by JSON bodies and multipart text fields. */
export const CreateOptionsSchema = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 200, description: 'display name (empty or absent: the id)' })),
  method: Type.Optional(MethodField),
  model: Type.Optional(ModelField),
  pooling: Type.Optional(PoolingField),
  normalize: Type.Optional(Type.Boolean({ default: true, description: 'L2-normalise the embeddings (as POST /v1/embeddings)' })),
  keep_images: Type.Optional(Type.Boolean({ default: false, description: 'also store the example images, so the classifier can be re-embedded on another model (POST /v1/classifiers/{id}/reembed)' })),
  seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, default: 0, description: 'seeds the cross-validation folds' })),
  knn_k: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 3, description: 'k of method knn' }))
}, { additionalProperties: false })
export type CreateOptions = Static<typeof CreateOptionsSchema>

export const ExampleSchema = Type.Object({
  label: LabelField,
  input: Type.Optional(ImageStringSchema),
  embedding: Type.Optional(EmbeddingField)
}, { additionalProperties: false, description: 'one labelled example: an image (`input`, base64 or data URI) or a precomputed `embedding`' })

export const CreateJsonRequestSchema = Type.Composite([
  Type.Object({ examples: Type.Array(ExampleSchema, { description: 'labelled examples (at most CLMAE_CLASSIFIER_MAX_EXAMPLES_PER_REQUEST)' }) }),
  CreateOptionsSchema
], { additionalProperties: false, examples: [{ name: 'balls', method: 'logreg', examples: [{ label: 'golf', input: 'data:image/jpeg;base64,...' }, { label: 'tennis', input: 'data:image/jpeg;base64,...' }] }] })
export type CreateJsonRequest = Static<typeof CreateJsonRequestSchema>

export const CreateMultipartSchema = Type.Object({
  file: Type.Array(Type.String({ format: 'binary' }), { description: 'one file part per example image (any field name)' }),
  label: Type.Array(Type.String(), { description: 'one `label` text field per file, in the same order' }),
  name: Type.Optional(Type.String()),
  method: Type.Optional(Type.String()),
  model: Type.Optional(Type.String()),
  keep_images: Type.Optional(Type.String())
}, { description: 'example images as file parts with a `label` field per file (in order); options as text fields' })

/** Add examples: the examples only (the classifier keeps its method, model and options). */
export const AddExamplesOptionsSchema = Type.Object({
  seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, default: 0, description: 'seeds the cross-validation folds of the refit' }))
}, { additionalProperties: false })

export const AddExamplesJsonRequestSchema = Type.Composite([
  Type.Object({ examples: Type.Array(ExampleSchema) }),
  AddExamplesOptionsSchema
], { additionalProperties: false })
export type AddExamplesJsonRequest = Static<typeof AddExamplesJsonRequestSchema>

export const CrossValidationSchema = Type.Object({
  scheme: Type.Union([Type.String(), Type.Null()], { description: 'e.g. stratified-k-fold(k=3, seed=0); null when a label has a single example' }),
  accuracy: Type.Union([Type.Number(), Type.Null()], { description: 'pooled held-out accuracy (logreg: at the selected C, chosen on the same folds, so slightly optimistic); null without CV' }),
  C: Type.Optional(Type.Number({ description: 'logreg: the L2 strength used (scikit-learn\'s C)' })),
  C_selection: Type.Optional(Type.String())
}, { additionalProperties: false })

export const ClassifierSchema = Type.Object({
  object: Type.Literal('classifier'),
  id: Type.String(),
  name: Type.String(),
  method: Type.String(),
  version: Type.Integer({ description: 'starts at 1; +1 on every refit (added examples, re-embedding)' }),
  labels: Type.Array(Type.Object({ label: Type.String(), count: Type.Integer() }), { description: 'labels, sorted, with their example counts' }),
  num_examples: Type.Integer({ description: 'stored example embeddings' }),
  cross_validation: CrossValidationSchema,
  model: Type.String({ description: 'the model the classifier is pinned to' }),
  model_sha256: Type.String({ description: 'sha256 of that model\'s encoder graph: predicting with another is 409 CLASSIFIER_MODEL_MISMATCH' }),
  pooling: Type.String(),
  normalize: Type.Boolean(),
  dim: Type.Integer({ description: 'embedding dimension D' }),
  keep_images: Type.Boolean(),
  refittable: Type.Boolean({ description: 'false when imported without example embeddings' }),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' })
})
export type Classifier = Static<typeof ClassifierSchema>

export const ListQuerySchema = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ maxLength: 64, description: 'next_cursor of the previous page' }))
}, { additionalProperties: false })
export type ListQuery = Static<typeof ListQuerySchema>

export const ListResponseSchema = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(ClassifierSchema),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'pass as cursor for the next page; null on the last page' })
})
export type ListResponse = Static<typeof ListResponseSchema>

export const PredictOptionsSchema = Type.Object({
  model: Type.Optional(ModelField),
  top_k: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 5, description: 'labels returned per image' })),
  threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'abstain (label null) when the top probability is below this' }))
}, { additionalProperties: false })
export type PredictOptions = Static<typeof PredictOptionsSchema>

export const PredictJsonRequestSchema = Type.Composite([
  Type.Object({
    input: Type.Optional(Type.Union([ImageStringSchema, Type.Array(ImageStringSchema, { minItems: 1 })], { description: 'one image or a list, base64 or data URI' })),
    embeddings: Type.Optional(Type.Array(EmbeddingField, { minItems: 1, description: 'precomputed embeddings of the pinned model instead of images' }))
  }),
  PredictOptionsSchema
], { additionalProperties: false })
export type PredictJsonRequest = Static<typeof PredictJsonRequestSchema>

export const PredictionSchema = Type.Object({
  index: Type.Integer({ description: 'position of the image in the request' }),
  label: Type.Union([Type.String(), Type.Null()], { description: 'the top label; null when abstained' }),
  abstained: Type.Boolean(),
  top_k: Type.Array(Type.Object({ label: Type.String(), probability: Type.Number() }), { description: 'most probable first' }),
  neighbours: Type.Optional(Type.Array(Type.Object({ example_id: Type.Integer(), label: Type.String(), similarity: Type.Number() }), { description: 'knn: the nearest stored examples' }))
})

export const PredictResponseSchema = Type.Object({
  object: Type.Literal('list'),
  classifier: Type.String(),
  version: Type.Integer(),
  model: Type.String(),
  model_sha256: Type.String(),
  data: Type.Array(PredictionSchema)
})
export type PredictResponse = Static<typeof PredictResponseSchema>

export const ReembedRequestSchema = Type.Object({
  model: Type.Optional(ModelField),
  seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, default: 0 }))
}, { additionalProperties: false })
export type ReembedRequest = Static<typeof ReembedRequestSchema>

const ProbeStateSchema = Type.Union([
  Type.Object({ method: Type.Literal('logreg'), C: Type.Number(), mean: Type.Array(Type.Number()), std: Type.Array(Type.Number()), weights: Type.Array(Type.Array(Type.Number())), bias: Type.Array(Type.Number()) }, { additionalProperties: false, description: 'p = softmax(W (x - mean) / std + b); W (K, D)' }),
  Type.Object({ method: Type.Literal('knn'), k: Type.Integer(), examples: Type.Array(Type.Array(Type.Number())), example_labels: Type.Array(Type.Integer()), example_ids: Type.Array(Type.Integer()) }, { additionalProperties: false, description: 'examples L2-normalised; example_labels index labels' }),
  Type.Object({ method: Type.Literal('centroid'), temperature: Type.Number(), centroids: Type.Array(Type.Array(Type.Number())) }, { additionalProperties: false, description: 'p = softmax(cos(x, centroid) / temperature)' })
])

export const ExportSchema = Type.Object({
  format: Type.Literal('clmae-classifier'),
  format_version: Type.Literal(1),
  name: Type.String({ minLength: 1, maxLength: 200 }),
  method: MethodField,
  version: Type.Integer({ minimum: 1 }),
  labels: Type.Array(Type.String(), { minItems: 2, description: 'class index order' }),
  embedding: Type.Object({
    model: Type.String({ minLength: 1 }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'sha256 of the encoder graph the classifier is pinned to' }),
    pooling: PoolingField,
    normalize: Type.Boolean(),
    dim: Type.Integer({ minimum: 1 })
  }, { additionalProperties: false }),
  probe: ProbeStateSchema,
  cross_validation: Type.Optional(CrossValidationSchema),
  examples: Type.Optional(Type.Array(Type.Object({ label: Type.String(), embedding: Type.Array(Type.Number()) }, { additionalProperties: false }), { description: 'the example embeddings (no images); without them an import can predict but not be refitted' }))
}, { additionalProperties: false })
export type ClassifierExport = Static<typeof ExportSchema>

export const ExportQuerySchema = Type.Object({
  include_examples: Type.Optional(Type.Boolean({ default: true, description: 'include the example embeddings (needed to refit after import)' }))
}, { additionalProperties: false })

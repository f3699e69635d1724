/**
 * Every Prometheus metric of the service and every bucket choice, in one file (style rule 9).
 * One registry per app instance, so tests that build several apps do not collide.
 * Names carry the `clmae_` prefix and base units; the model id is a label, never part of a name;
 * `reason` labels are error codes from src/errors.ts.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

// request latencies: 1 ms .. 60 s
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
// queue wait and inference: 0.1 ms .. 10 s
const STAGE_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]
const BATCH_BUCKETS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128]
const PIXEL_BUCKETS = [4096, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864]

export interface Metrics {
  registry: Registry
  requestDuration: Histogram<'route' | 'method' | 'status'>
  requestsTotal: Counter<'route' | 'method' | 'status'>
  inflightRequests: Gauge
  queueWait: Histogram<'model' | 'graph'>
  inferenceDuration: Histogram<'model' | 'graph'>
  batchSize: Histogram<'model' | 'graph'>
  queueDepth: Gauge<'model' | 'graph'>
  rejections: Counter<'reason'>
  preprocessDuration: Histogram<'stage'>
  decodeAdmittedBytes: Gauge
  decodeWaiting: Gauge
  imagePixels: Histogram
  classifiers: Gauge
  classifierFitDuration: Histogram<'method'>
  classifierFitQueue: Gauge
  classifierProbeCache: Counter<'result'>
  databaseUp: Gauge
}

export function createMetrics (options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry()
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'clmae_' })
  const registers = [registry]
  return {
    registry,
    requestDuration: new Histogram({ name: 'clmae_request_duration_seconds', help: 'HTTP request duration by route template and status', labelNames: ['route', 'method', 'status'], buckets: DURATION_BUCKETS, registers }),
    requestsTotal: new Counter({ name: 'clmae_requests_total', help: 'HTTP requests by route template and status', labelNames: ['route', 'method', 'status'], registers }),
    inflightRequests: new Gauge({ name: 'clmae_inflight_requests', help: 'HTTP requests being processed', registers }),
    queueWait: new Histogram({ name: 'clmae_queue_wait_seconds', help: 'time an image waited in a graph queue before its batch ran', labelNames: ['model', 'graph'], buckets: STAGE_BUCKETS, registers }),
    inferenceDuration: new Histogram({ name: 'clmae_inference_duration_seconds', help: 'onnxruntime run time of one batch', labelNames: ['model', 'graph'], buckets: STAGE_BUCKETS, registers }),
    batchSize: new Histogram({ name: 'clmae_batch_size', help: 'images per inference call', labelNames: ['model', 'graph'], buckets: BATCH_BUCKETS, registers }),
    queueDepth: new Gauge({ name: 'clmae_queue_depth', help: 'images waiting in a graph queue', labelNames: ['model', 'graph'], registers }),
    rejections: new Counter({ name: 'clmae_rejections_total', help: 'refused or dropped requests by reason (an error code)', labelNames: ['reason'], registers }),
    preprocessDuration: new Histogram({ name: 'clmae_preprocess_duration_seconds', help: 'image preprocessing time by stage (decode: sharp decode + orient; resize: Pillow-exact resample of the crop window; normalize: mean/std to CHW float32)', labelNames: ['stage'], buckets: STAGE_BUCKETS, registers }),
    decodeAdmittedBytes: new Gauge({ name: 'clmae_decode_admitted_bytes', help: 'decoded image bytes admitted (decoding or waiting for a decode slot)', registers }),
    decodeWaiting: new Gauge({ name: 'clmae_decode_waiting', help: 'images waiting for a decode slot', registers }),
    imagePixels: new Histogram({ name: 'clmae_image_pixels', help: 'decoded input image size (width x height)', buckets: PIXEL_BUCKETS, registers }),
    classifiers: new Gauge({ name: 'clmae_classifiers', help: 'few-shot classifiers in the store', registers }),
    classifierFitDuration: new Histogram({ name: 'clmae_classifier_fit_seconds', help: 'time to fit (or refit) a few-shot classifier, cross-validation included', labelNames: ['method'], buckets: DURATION_BUCKETS, registers }),
    classifierFitQueue: new Gauge({ name: 'clmae_classifier_fit_queue', help: 'fits waiting behind the running one on this replica', registers }),
    classifierProbeCache: new Counter({ name: 'clmae_classifier_probe_cache_total', help: 'fitted-probe cache lookups of predict by result (hit, miss)', labelNames: ['result'], registers }),
    databaseUp: new Gauge({ name: 'clmae_database_up', help: '1 while the classifier store answers, 0 while it cannot be reached (or is not open yet)', registers })
  }
}

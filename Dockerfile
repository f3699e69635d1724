# syntax=docker/dockerfile:1.7
# CL-MAE Serve image. Multi-stage: the build stage has the tools native modules need (better-sqlite3
# compiles with node-gyp when no prebuilt binary matches); the runtime stage runs as a non-root user.
#
# CPU (default):
#   docker build -t clmae-serve .
#   docker run -p 8080:8080 -v clmae-data:/app/data clmae-serve
# CUDA 12 (onnxruntime-node's CUDA binaries; needs the NVIDIA container toolkit, run with --gpus all):
#   docker build -t clmae-serve:cuda \
#     --build-arg ONNXRUNTIME_NODE_INSTALL=cuda12 \
#     --build-arg RUNTIME_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 \
#     --build-arg CLMAE_EXECUTION_PROVIDER=cuda .
# Other bundles: -v "$PWD/models:/app/models:ro". Every CLMAE_* setting can be passed with -e.

ARG NODE_IMAGE=node:20-bookworm-slim
ARG RUNTIME_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# skip: CPU binaries only (they ship inside the npm package); cuda12: also download the CUDA EP binaries
ARG ONNXRUNTIME_NODE_INSTALL=skip
# build tools only live in this stage; their exact Debian versions do not reach the image
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# tsx (runs the TypeScript sources) is a runtime dependency; typescript and test tools are not installed
RUN npm ci --omit=dev --no-audit --no-fund \
 && if [ "$ONNXRUNTIME_NODE_INSTALL" != "skip" ]; then \
      ONNXRUNTIME_NODE_INSTALL="$ONNXRUNTIME_NODE_INSTALL" node node_modules/onnxruntime-node/script/install; \
    fi \
 && npm cache clean --force
COPY tsconfig.json ./
COPY src ./src
COPY openapi ./openapi
COPY training/bundle-format ./training/bundle-format
COPY models ./models

FROM ${RUNTIME_IMAGE} AS runtime
ARG CLMAE_EXECUTION_PROVIDER=cpu
# the CUDA runtime image has no Node.js: take the build stage's binary (same major version everywhere)
COPY --from=build /usr/local/bin/node /usr/local/bin/node
RUN groupadd --system --gid 10001 clmae \
 && useradd --system --uid 10001 --gid clmae --home-dir /app --shell /usr/sbin/nologin clmae
WORKDIR /app
COPY --from=build /app /app
RUN mkdir -p /app/data && chown clmae:clmae /app/data
ENV NODE_ENV=production \
    CLMAE_HOST=0.0.0.0 \
    CLMAE_PORT=8080 \
    CLMAE_MODELS_DIR=/app/models \
    CLMAE_DB_PATH=/app/data/clmae.sqlite \
    CLMAE_EXECUTION_PROVIDER=${CLMAE_EXECUTION_PROVIDER}
# the few-shot classifier store (SQLite) lives here
VOLUME ["/app/data"]
EXPOSE 8080
USER 10001:10001
# ready = bundles verified, sessions created and warmed up, not draining
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.CLMAE_PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node is PID 1 and handles SIGTERM itself: /readyz 503, finish queued work, exit
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "src/server.ts"]

# syntax=docker/dockerfile:1.7
# CL-MAE Serve image. Multi-stage: the build stage installs every dependency, compiles src/ to dist/
# (`npm run build`) and prunes the dev dependencies (typescript, tsx); the runtime stage runs
# `node dist/server.js` as a non-root user that can write /app/data and nothing else under /app.
#
# Build arguments (defaults in brackets):
#   NODE_IMAGE [node:20-bookworm-slim]      build stage: Node.js 20 with npm at /usr/local/bin
#   RUNTIME_IMAGE [node:20-bookworm-slim]   runtime stage: any glibc Debian/Ubuntu; /usr/local/bin/node is
#                                           copied from the build stage, so it needs no Node.js of its own
#   NODE_HEADERS_DIR [empty]                prefix holding include/node, for native modules built without
#                                           internet (npm_config_nodedir); empty: node-gyp downloads headers
#   ONNXRUNTIME_NODE_INSTALL [skip]         cuda12: also install onnxruntime's CUDA execution provider
#   CLMAE_EXECUTION_PROVIDER [cpu]          the image's default CLMAE_EXECUTION_PROVIDER
# Build secret (optional): npm_ca, a CA bundle for npm behind a TLS-intercepting proxy
#   (docker build --secret id=npm_ca,src=/etc/ssl/certs/ca-certificates.crt ...).
#
# CPU, from the official images (Docker):
#   docker build -t clmae-serve .
#   docker run -p 8080:8080 -v clmae-data:/app/data clmae-serve
# CUDA 12 (needs the NVIDIA container toolkit, run with --gpus all):
#   docker build -t clmae-serve:cuda \
#     --build-arg ONNXRUNTIME_NODE_INSTALL=cuda12 \
#     --build-arg RUNTIME_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 \
#     --build-arg CLMAE_EXECUTION_PROVIDER=cuda .
# Without a registry (buildah, a local Debian base with the host's Node.js): deploy/image/build-and-run.sh.
# Other bundles: -v "$PWD/models:/app/models:ro". Every CLMAE_* setting can be passed with -e.

ARG NODE_IMAGE=node:20-bookworm-slim
ARG RUNTIME_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
ARG ONNXRUNTIME_NODE_INSTALL=skip
ARG NODE_HEADERS_DIR=
# native modules (better-sqlite3) compile with node-gyp when no prebuilt binary can be fetched; a base
# that already has the tools (the local one of build-and-run.sh) skips apt-get
# hadolint ignore=DL3008
RUN if ! command -v g++ > /dev/null || ! command -v make > /dev/null || ! command -v python3 > /dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# build secret npm_ca (optional): the CA bundle of a TLS-intercepting proxy between the build and the
# npm registry; it is mounted for this step only and never stored in a layer
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export npm_config_cafile=/run/secrets/npm_ca; fi \
 && if [ -n "$NODE_HEADERS_DIR" ]; then export npm_config_nodedir="$NODE_HEADERS_DIR"; fi \
 && npm ci --no-audit --no-fund \
 && if [ "$ONNXRUNTIME_NODE_INSTALL" != "skip" ]; then \
      ONNXRUNTIME_NODE_INSTALL="$ONNXRUNTIME_NODE_INSTALL" node node_modules/onnxruntime-node/script/install; \
    fi
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# compiled JavaScript only at run time: dev dependencies (typescript, tsx) are pruned after the build
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

FROM ${RUNTIME_IMAGE} AS runtime
ARG CLMAE_EXECUTION_PROVIDER=cpu
# the CUDA runtime image has no Node.js: take the build stage's binary (same major version everywhere)
COPY --from=build /usr/local/bin/node /usr/local/bin/node
RUN groupadd --system --gid 10001 clmae \
 && useradd --system --uid 10001 --gid clmae --home-dir /app --no-create-home --shell /usr/sbin/nologin clmae
WORKDIR /app
# everything under /app belongs to root and is read-only for the service user, except /app/data
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# files the compiled service reads from the package root (src/paths.ts): the page, the bundle schema
COPY src/ui ./src/ui
COPY training/bundle-format ./training/bundle-format
COPY openapi ./openapi
COPY models ./models
# the service writes /app/data and nothing else: Debian's world-writable directories (/tmp, /var/tmp,
# /run/lock) are closed too (mount a tmpfs on /tmp if a library needs one; the Helm chart does)
RUN mkdir -p /app/data && chown clmae:clmae /app/data && chmod 0750 /app/data \
 && chmod 0755 /tmp /var/tmp /run/lock
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
CMD ["node", "dist/server.js"]

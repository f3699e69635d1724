#!/usr/bin/env bash
# Builds the Dockerfile and runs the image, on a Linux machine with no Docker engine and no registry:
#   1. buildah and mmdebstrap (Debian packages) are installed if missing (apt-get, as root);
#   2. two local base images made with mmdebstrap (Debian bookworm): the build base, with the
#      native-module build tools plus this machine's Node.js 20 binary, npm and headers (bookworm itself
#      ships Node 18), and the runtime base, minbase plus CA certificates;
#   3. `buildah bud --isolation chroot` builds the Dockerfile on them (NODE_IMAGE = the build base,
#      RUNTIME_IMAGE = the runtime base, NODE_HEADERS_DIR = the headers, so better-sqlite3 compiles
#      without downloading them);
#   4. the image's own command runs with `buildah run --isolation chroot --network host`, and the
#      script checks: /readyz 200, one embedding, the server process's uid is not 0, and the image's
#      user can write /app/data and no other directory of the root file system.
# Needs root (buildah's storage, mmdebstrap's root mode) and the npm registry plus deb.debian.org.
# Usage: deploy/image/build-and-run.sh [--rebuild-base | --run-only]. The bases are cached (buildah's
# storage) and reused unless --rebuild-base; the service image is rebuilt on every run unless
# --run-only (which runs the checks on the image built last). Prints its wall time.
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$(date +%s)

WORK="${CLMAE_IMAGE_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/clmae-image}"
BUILD_BASE=localhost/clmae-build-base:bookworm-node20
RUNTIME_BASE=localhost/clmae-runtime-base:bookworm
IMAGE="${CLMAE_IMAGE:-localhost/clmae-serve:dev}"
PORT="${CLMAE_IMAGE_PORT:-18093}"
MODE="${1:-}"
case "$MODE" in ""|--rebuild-base|--run-only) ;; *) echo "usage: $0 [--rebuild-base | --run-only]" >&2; exit 2 ;; esac
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

step() { printf '\n==> %s (%d s)\n' "$*" "$(( $(date +%s) - started ))"; }
fail() { echo "build-and-run: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (buildah storage and mmdebstrap need it)"

step "buildah and mmdebstrap"
if ! command -v buildah > /dev/null || ! command -v mmdebstrap > /dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends buildah mmdebstrap
fi
buildah --version

mkdir -p "$WORK"
# chroot isolation cannot set rlimits inside this kind of host (a container or sandbox): no default ulimits
cat > "$WORK/containers.conf" <<'CONF'
[containers]
default_ulimits = []
CONF
export CONTAINERS_CONF="$WORK/containers.conf"

# bootstrap ROOTFS_TAR [mmdebstrap options...]: Debian bookworm, minbase, into a tarball
bootstrap() {
  local tar="$1"; shift
  mmdebstrap --variant=minbase --mode=root --format=tar "$@" \
    --customize-hook='rm -rf "$1/var/lib/apt/lists"/* "$1/var/cache/apt"/*.bin' \
    bookworm "$tar" "$MIRROR"
}
# import IMAGE ROOTFS_TAR: a tarball of a root file system as a local image
import_rootfs() {
  local ctr old
  old=$(buildah images -q "$1" 2> /dev/null || true)
  ctr=$(buildah from scratch)
  buildah add "$ctr" "$2" /
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash "$ctr"
  buildah commit --rm "$ctr" "$1"
  drop_replaced "$1" "$old"
  rm -f "$2"
}
have_image() { buildah inspect --type image "$1" > /dev/null 2>&1; }
# drop_replaced IMAGE OLD_ID: remove the image that IMAGE named before a rebuild (no dangling copies)
drop_replaced() {
  if [ -n "$2" ] && [ "$(buildah images -q "$1" 2> /dev/null)" != "$2" ]; then buildah rmi "$2" > /dev/null 2>&1 || true; fi
}

if [ "$MODE" != --run-only ]; then
  step "local base images"
  NODE_BIN="$(command -v node)"
  NODE_PREFIX="$(cd "$(dirname "$(readlink -f "$NODE_BIN")")/.." && pwd)"
  [ "$("$NODE_BIN" -p 'process.versions.node.split(".")[0]')" = 20 ] || fail "the host's node is not Node.js 20: $("$NODE_BIN" --version)"
  [ -f "$NODE_PREFIX/include/node/node.h" ] || fail "no Node.js headers at $NODE_PREFIX/include/node"
  [ -d "$NODE_PREFIX/lib/node_modules/npm" ] || fail "no npm at $NODE_PREFIX/lib/node_modules/npm"
  if [ "$MODE" = --rebuild-base ] || ! have_image "$BUILD_BASE"; then
    # Node.js goes where the official node images have it (/usr/local), so the Dockerfile's
    # `COPY --from=build /usr/local/bin/node` is the same for both kinds of base
    bootstrap "$WORK/build-rootfs.tar" --include=ca-certificates,python3,make,g++ \
      --customize-hook="mkdir -p \"\$1/usr/local/bin\" \"\$1/usr/local/include\" \"\$1/usr/local/lib/node_modules\"" \
      --customize-hook="cp \"$NODE_BIN\" \"\$1/usr/local/bin/node\"" \
      --customize-hook="cp -a \"$NODE_PREFIX/include/node\" \"\$1/usr/local/include/node\"" \
      --customize-hook="cp -a \"$NODE_PREFIX/lib/node_modules/npm\" \"\$1/usr/local/lib/node_modules/npm\"" \
      --customize-hook="ln -s ../lib/node_modules/npm/bin/npm-cli.js \"\$1/usr/local/bin/npm\"" \
      --customize-hook="ln -s ../lib/node_modules/npm/bin/npx-cli.js \"\$1/usr/local/bin/npx\""
    import_rootfs "$BUILD_BASE" "$WORK/build-rootfs.tar"
  fi
  if [ "$MODE" = --rebuild-base ] || ! have_image "$RUNTIME_BASE"; then
    bootstrap "$WORK/runtime-rootfs.tar" --include=ca-certificates
    import_rootfs "$RUNTIME_BASE" "$WORK/runtime-rootfs.tar"
  fi

  step "buildah bud (the Dockerfile) -> $IMAGE"
  # npm's CA bundle on this machine (it may trust a TLS-intercepting egress proxy) goes to the build as a secret
  ca_file="${NPM_CA_FILE:-$(npm config get cafile 2> /dev/null || true)}"
  secret=()
  if [ -n "$ca_file" ] && [ "$ca_file" != null ] && [ "$ca_file" != undefined ] && [ -s "$ca_file" ]; then secret=(--secret "id=npm_ca,src=$ca_file"); fi
  old_image=$(buildah images -q "$IMAGE" 2> /dev/null || true)
  buildah bud --isolation chroot --network host --layers=false "${secret[@]}" \
    --build-arg NODE_IMAGE="$BUILD_BASE" --build-arg RUNTIME_IMAGE="$RUNTIME_BASE" --build-arg NODE_HEADERS_DIR=/usr/local \
    -t "$IMAGE" -f Dockerfile .
  drop_replaced "$IMAGE" "$old_image"
fi
built=$(date +%s)

step "run the image's command (buildah run, port $PORT)"
ctr=$(buildah from "$IMAGE")
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2> /dev/null || true
  buildah rm "$ctr" > /dev/null 2>&1 || true
}
trap cleanup EXIT
# the image's CMD, working directory, user and environment; only the port is changed
mapfile -t cmd < <(buildah inspect --type container --format '{{range .OCIv1.Config.Entrypoint}}{{println .}}{{end}}{{range .OCIv1.Config.Cmd}}{{println .}}{{end}}' "$ctr" | sed '/^$/d')
echo "command: ${cmd[*]} (user $(buildah inspect --type container --format '{{.OCIv1.Config.User}}' "$ctr"))"
buildah run --isolation chroot --network host --env CLMAE_PORT="$PORT" --env CLMAE_LOG_LEVEL=warn "$ctr" -- "${cmd[@]}" > "$WORK/server.log" 2>&1 &
runner=$!
ready=0
for _ in $(seq 1 180); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz" > /dev/null 2>&1; then ready=1; break; fi
  kill -0 "$runner" 2> /dev/null || break
  sleep 1
done
[ "$ready" = 1 ] || { cat "$WORK/server.log"; fail "the image's server did not become ready"; }
echo "/readyz: $(curl -fsS "http://127.0.0.1:$PORT/readyz")"

embedding=$(curl -fsS "http://127.0.0.1:$PORT/v1/embeddings" -H 'content-type: image/png' --data-binary @test/fixtures/images/gradient.png)
dims=$(printf '%s' "$embedding" | node -e 'let s = ""; process.stdin.on("data", (d) => { s += d }).on("end", () => { const e = JSON.parse(s).data[0].embedding; if (!e.every(Number.isFinite)) process.exit(1); console.log(e.length) })')
echo "one embedding: $dims dimensions"

# the server process, seen from the host (chroot isolation: no user namespace, uids are the host's)
# buildah run -> buildah-chroot-runtime -> buildah-chroot-exec -> node: the node process below $runner
descendants() { local child; for child in $(pgrep -P "$1"); do echo "$child"; descendants "$child"; done; }
for pid in $(descendants "$runner"); do
  [ "$(cat "/proc/$pid/comm" 2> /dev/null)" = node ] && server_pid=$pid
done
[ -n "$server_pid" ] || fail "no node process below buildah run ($runner)"
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$server_pid/status")
echo "server process $server_pid: uid $uid, command: $(tr '\0' ' ' < "/proc/$server_pid/cmdline")"
[ "$uid" = 10001 ] || fail "the server runs as uid $uid, not the image's user 10001"

step "what the image's user can write"
buildah run --isolation chroot "$ctr" -- sh -c '
  echo "user: $(id)"
  for path in /app/data /app /app/dist /app/models /app/node_modules /app/src/ui /usr/local/bin /etc /; do
    if touch "$path/.write-probe" 2> /dev/null; then rm -f "$path/.write-probe"; echo "writable: $path"; else echo "read-only: $path"; fi
  done
  echo "every writable directory on the root file system:"
  find / -xdev \( -path /proc -o -path /sys -o -path /dev \) -prune -o -type d -writable -print 2> /dev/null | sort' | tee "$WORK/writable.txt"
grep -qx 'writable: /app/data' "$WORK/writable.txt" || fail "/app/data is not writable"
if grep '^writable: ' "$WORK/writable.txt" | grep -vqx 'writable: /app/data'; then fail "writable beyond /app/data"; fi
unexpected=$(sed -n '/^every writable directory/,$p' "$WORK/writable.txt" | tail -n +2 | grep -vE '^/app/data(/|$)' || true)
[ -z "$unexpected" ] || fail "writable directories beyond /app/data: $unexpected"

kill "$server_pid"; server_pid=
wait "$runner" || true
echo
echo "build-and-run: passed. image $IMAGE ($(buildah images --format '{{.Size}}' "$IMAGE" | head -n 1));" \
  "build $(( built - started )) s, total wall time $(( $(date +%s) - started )) s"

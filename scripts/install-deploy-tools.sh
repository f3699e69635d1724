#!/usr/bin/env bash
# Builds the two tools the deployment tests use, into .cache/bin (ignored by git), unless they are
# there already at the pinned versions:
#   helm          the pinned release, from the Go module proxy (renders deploy/helm/ offline);
#   k8s-validate  deploy/k8s-validate: strict decoding of rendered objects into k8s.io/api's types.
# Needs Go >= 1.26 (`go` on PATH, or /usr/local/go/bin/go). No cluster is contacted. The first run
# downloads the modules and compiles for several minutes; later runs return at once.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION="${HELM_VERSION:-v3.21.4}"
# the Kubernetes version of helm's own k8s.io modules (v0.36.x = Kubernetes 1.36): helm's default
# for .Capabilities.KubeVersion, set the way helm's Makefile sets it
K8S_MINOR=36
BIN_DIR="$PWD/.cache/bin"
mkdir -p "$BIN_DIR"

GO="$(command -v go || true)"
[ -n "$GO" ] || GO=/usr/local/go/bin/go
if [ ! -x "$GO" ]; then
  echo "install-deploy-tools: Go is needed to build helm $HELM_VERSION and k8s-validate (https://go.dev/dl/)" >&2
  exit 1
fi

helm_stamp="helm $HELM_VERSION kubernetes 1.$K8S_MINOR"
if [ "$(cat "$BIN_DIR/helm.stamp" 2> /dev/null)" != "$helm_stamp" ] || [ ! -x "$BIN_DIR/helm" ]; then
  start=$(date +%s)
  # -mod=mod: helm's go.mod as published
  GOFLAGS=-mod=mod GOBIN="$BIN_DIR" CGO_ENABLED=0 "$GO" install -ldflags "-w -s \
    -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$K8S_MINOR \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$K8S_MINOR" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  echo "$helm_stamp" > "$BIN_DIR/helm.stamp"
  echo "built $helm_stamp in $(( $(date +%s) - start )) s"
fi

validate_stamp="k8s-validate $(cat deploy/k8s-validate/go.mod deploy/k8s-validate/go.sum deploy/k8s-validate/*.go | sha256sum | cut -c1-16)"
if [ "$(cat "$BIN_DIR/k8s-validate.stamp" 2> /dev/null)" != "$validate_stamp" ] || [ ! -x "$BIN_DIR/k8s-validate" ]; then
  start=$(date +%s)
  (cd deploy/k8s-validate && CGO_ENABLED=0 "$GO" build -o "$BIN_DIR/k8s-validate" .)
  echo "$validate_stamp" > "$BIN_DIR/k8s-validate.stamp"
  echo "built $validate_stamp in $(( $(date +%s) - start )) s"
fi
"$BIN_DIR/helm" version --short

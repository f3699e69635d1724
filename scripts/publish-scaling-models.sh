#!/usr/bin/env bash
# Ships the largest finished and evaluated budget of the scaling curve (issue 16) as the default bundles
# models/clmae-vit-mini-p8-64 and models/mae-vit-mini-p8-64 (same architecture, same names), with everything
# that depends on their weights, as one commit's worth of changes:
#   1. the two bundles, exported from the runs' final checkpoints (clmae.export; the format main accepts) into a
#      staging folder, each checked to come from the checkpoint its run's few-shot result measured, then moved in;
#   2. the service tests' reference outputs, test/fixtures/reference/<bundle>.json (clmae.tools.write_reference;
#      test/features/*, test/http/routes/embeddings.test.ts and training/tests/test_reference.py match them by sha256);
#   3. the runs' logs -> models/runs/ (train-scaling-curve.sh logs);
#   4. the README few-shot table -> models/fewshot/, README.md: the runs' own results (training/tools/
#      shipped_fewshot_report.py) when the exported encoders are the graphs they measured, else scripts/fewshot-table.sh
#      on the new bundles (every test image, 3 seeds: about 30 min on 2 cores);
#   5. the model card (training/tools/model_card.py: it follows the manifests to the runs' logs) and the default
#      model's int8 variant (scripts/quantize-default-models.sh publish);
#   6. the tests that read the shipped weights (TESTS=0 skips them);
# then prints the git command that commits exactly those paths. It does not commit (README.md is shared).
# It refuses a budget smaller than the shipped bundles' images seen (24,576 today) and says which budget it
# publishes. Usage: scripts/publish-scaling-models.sh [IMAGES]   (default: the largest ready budget)
# Settings (environment): RUNS (runs/scaling), FEWSHOT_DATA (../shared/data), TESTS (1),
# MIN_IMAGES (override the floor: smoke tests on a copy of the repository only).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=$(cd "${RUNS:-runs/scaling}" && pwd)
PY=$ROOT/.venv/bin/python
FLOOR=()
[ -n "${MIN_IMAGES:-}" ] && FLOOR=(--min-images "$MIN_IMAGES")

CHOICE=$($PY training/tools/publish_scaling.py --runs-dir "$RUNS" "${FLOOR[@]}" "$@")   # exits (3: refused) saying why
read -r IMAGES CLMAE_RUN MAE_RUN <<< "$CHOICE"
echo "== publishing the ${IMAGES}-image budget: $CLMAE_RUN -> clmae-vit-mini-p8-64, $MAE_RUN -> mae-vit-mini-p8-64"

PAIRS=("clmae-vit-mini-p8-64 $CLMAE_RUN" "mae-vit-mini-p8-64 $MAE_RUN")
PATHS="models/clmae-vit-mini-p8-64 models/mae-vit-mini-p8-64 models/clmae-vit-mini-p8-64-int8 test/fixtures/reference models/fewshot models/runs models/card models/README.md README.md"
# Both bundles are exported into a staging folder first, each from the checkpoint its run's few-shot result was
# measured on (exit 3 otherwise): nothing in the working tree changes until both are.
STAGE=$(mktemp -d "$ROOT/models/.publish-staging-XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
for pair in "${PAIRS[@]}"; do
  read -r bundle run <<< "$pair"
  (cd training && $PY -m clmae.export --checkpoint "$RUNS/$run/checkpoint.pt" --output "$STAGE/$bundle" --name "$bundle")
  $PY training/tools/publish_scaling.py --runs-dir "$RUNS" --check-export "$STAGE/$bundle" "$run"
done
# From here on a failure leaves a partial publish in the working tree: say so, and how to undo it.
UNDO="models/clmae-vit-mini-p8-64 models/mae-vit-mini-p8-64 models/clmae-vit-mini-p8-64-int8 test/fixtures/reference models/fewshot models/card models/README.md"
trap 'echo "== publishing FAILED: the working tree holds a partial publish of the ${IMAGES}-image budget (git status -- $PATHS)." \
  "Undo: git restore --source=HEAD --worktree -- $UNDO; README.md: its few-shot table hunk only." >&2' ERR
for pair in "${PAIRS[@]}"; do
  read -r bundle run <<< "$pair"
  mv "models/$bundle" "$STAGE/$bundle.shipped"
  mv "$STAGE/$bundle" "models/$bundle"
  (cd training && $PY -m clmae.tools.write_reference --bundle "../models/$bundle" --out "../test/fixtures/reference/$bundle.json")
done
rm -rf "$STAGE"

RUNS="$RUNS" scripts/train-scaling-curve.sh logs
# The README table: the runs' own results when the shipped encoders are byte for byte the graphs they measured
# (the same numbers; measuring again costs about half an hour on 2 cores), else the benchmark again.
if $PY training/tools/shipped_fewshot_report.py --runs-dir "$RUNS" --run "clmae-vit-mini-p8-64=$CLMAE_RUN" --run "mae-vit-mini-p8-64=$MAE_RUN"; then
  node --import tsx scripts/fewshot-table.ts models/fewshot/fewshot.json README.md models/fewshot/fewshot.md
else
  status=$?
  # 3: refused, so measure again; anything else is a bug to see: fail (the ERR trap says what is half done).
  if [ "$status" != 3 ]; then echo "shipped_fewshot_report.py failed (exit $status)" >&2; (exit "$status"); fi
  scripts/fewshot-table.sh
fi
$PY training/tools/model_card.py
# The default model's int8 variant is of the old weights until quantised again (its manifest names its source's
# sha256 values; the service tests check them). Its fidelity bars: README "int8 bundles" (quantize-default-models.sh measure).
scripts/quantize-default-models.sh publish

if [ "${TESTS:-1}" = 1 ]; then
  $PY -m pytest -q training/tests/test_reference.py training/tests/test_export.py training/tests/test_model_card.py
  node --import tsx --test --test-concurrency=1 test/features/*.test.ts test/bundles/*.test.ts \
    test/http/routes/embeddings.test.ts test/http/routes/mask-maps.test.ts test/http/routes/reconstructions.test.ts \
    test/http/routes/models.test.ts \
    test/cli/fewshot-benchmark.test.ts test/ui/*.test.ts
fi

echo "== published the ${IMAGES}-image budget. README.md is shared: commit only its few-shot table hunk (git add -p README.md)"
echo "   if others have uncommitted changes there; README's 'The shipped bundles ... are reproduced by' block still names"
echo "   scripts/train-default-models.sh: point it at train-scaling-curve.sh + publish-scaling-models.sh. Then:"
echo "git add $PATHS && git commit -m \"Default bundles: the ${IMAGES}-image scaling runs ($CLMAE_RUN, $MAE_RUN)\" -- $PATHS"

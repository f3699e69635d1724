#!/usr/bin/env bash
# The scaling curve of issue 16: CL-MAE and MAE at three budgets of images seen, on all of Imagenette
# train (9,469 images; 147 iterations of 64 = 9,408 images per epoch). Budgets of at least 24,576 /
# 98,304 / 245,760 images round up to 3 / 11 / 27 epochs = 28,224 / 103,488 / 254,016 images. Each run
# has its own lr schedule and curriculum lambda(e) (tables of its own --epochs), uses the in-memory
# pipeline, checkpoints every epoch (and every 10 minutes) and resumes when this script is re-run.
#
# Before training it measures img/s of both methods here (benchmarks/train_throughput.py) and prints
# the projected machine-hours of every run still to do; above MAX_HOURS (6) it starts nothing and says
# what fits. Run it only on an otherwise idle machine: the projection and the runs' timings assume it.
#
# Usage: scripts/train-scaling-curve.sh [plan|run|logs]
#   plan  measure and print the projection only
#   run   plan, then train every run still to do, smallest budget first (the default)
#   logs  copy each run's log.jsonl, config.json and keep_scores/ to models/runs/<run>/ (commit them as they grow)
# Settings (environment): DATA, CONFIG, BATCH, BLR, THREADS, BUDGETS, METHODS, MAX_HOURS, COMPILE=1,
# RUNS (run folders), EPOCHS (explicit epochs per budget, for smoke tests), BENCH_ITERS.
set -euo pipefail
cd "$(dirname "$0")/../training"
PY=../.venv/bin/python
DATA=${DATA:-../../shared/data/imagenette}
CONFIG=${CONFIG:-vit_mini_p8_64}
BATCH=${BATCH:-64}
BLR=${BLR:-1.5e-3}   # 10x MAE's base lr, as the shipped runs (training/README.md says why)
THREADS=${THREADS:-2}
BUDGETS=${BUDGETS:-"24576 98304 245760"}
METHODS=${METHODS:-"clmae mae"}
MAX_HOURS=${MAX_HOURS:-6}
RUNS=${RUNS:-../runs/scaling}
CACHE=${CACHE:-../data/cache}   # decoded-image cache (/data/ is git-ignored)
EXTRA=()
[ "${COMPILE:-0}" = 1 ] && EXTRA+=(--compile)

PLAN_ARGS=(--data "$DATA/train" --config "$CONFIG" --batch-size "$BATCH" --threads "$THREADS" --budgets $BUDGETS
           --methods $METHODS --runs-dir "$RUNS" --data-cache "$CACHE" --max-hours "$MAX_HOURS"
           --bench-iters "${BENCH_ITERS:-8}" "${EXTRA[@]}")
[ -n "${EPOCHS:-}" ] && PLAN_ARGS+=(--epochs $EPOCHS)

case "${1:-run}" in
  plan)
    $PY tools/scaling_plan.py "${PLAN_ARGS[@]}" >/dev/null ;;
  run)
    todo=$($PY tools/scaling_plan.py "${PLAN_ARGS[@]}")
    while read -r method epochs dir; do
      [ -n "$method" ] || continue
      echo "== $dir: $method, $epochs epochs"
      $PY -m clmae.train --config "$CONFIG" --method "$method" --epochs "$epochs" --data "$DATA/train" \
          --eval-data "$DATA/val" --output-dir "$dir" --batch-size "$BATCH" --blr "$BLR" --threads "$THREADS" \
          --data-pipeline memory --data-cache "$CACHE" --seed 0 "${EXTRA[@]}"
    done <<< "$todo" ;;
  logs)
    for dir in "$RUNS"/scaling-*; do
      [ -f "$dir/log.jsonl" ] || continue
      dest="../models/runs/$(basename "$dir")"
      mkdir -p "$dest"
      cp "$dir/log.jsonl" "$dir/config.json" "$dest/"
      [ -d "$dir/keep_scores" ] && cp -r "$dir/keep_scores" "$dest/"
      echo "$dest"
    done ;;
  *) echo "usage: $0 [plan|run|logs]" >&2; exit 2 ;;
esac

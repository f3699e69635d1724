#!/usr/bin/env bash
# int8 variants of the two shipped bundles (README, int8 bundles). Re-run after the shipped models change.
#   measure  (default): in runs/int8/models, the fp32 bundles and every variant compared in the README
#            (dynamic / static, 7- / 8-bit weights); the fidelity table (bench/int8-fidelity.ts), the few-shot
#            table of each fp32 bundle beside its default int8 variant (3 seeds, every test image, two
#            benchmark processes side by side: 10 min on 2 cores on 2026-12-04) and the few-shot rows of the three
#            other variants (README's second few-shot table; three processes side by side: 5 min more)
#            -> runs/int8/fewshot/, and both tables as README prints them (training/tools/int8_fewshot_table.py)
#   publish: writes models/clmae-vit-mini-p8-64-int8 (the default model's variant; ship it only when the
#            measured mean cosine is >= 0.99 and every few-shot cell is within 1 point Acc@1 of fp32)
# Data: ../shared/data (override with DATA).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=../.venv/bin/python     # from training/
PY_ROOT=.venv/bin/python   # from the repository root
DATA="$(realpath "${DATA:-../shared/data}")"
OUT=runs/int8
DEFAULT=clmae-vit-mini-p8-64
BASELINE=mae-vit-mini-p8-64

quantize() { (cd training && $PY -m clmae.quantize --bundle "../$1" --output "../$2" "${@:3}"); }

case "${1:-measure}" in
  measure)
    rm -rf "${OUT:?}/fewshot" && mkdir -p "$OUT/models" "$OUT/fewshot"  # no report of earlier weights survives
    pids=()
    trap 'kill "${pids[@]}" 2> /dev/null || true' EXIT  # a failed benchmark stops its siblings too
    for name in $DEFAULT $BASELINE; do
      rm -rf "${OUT:?}/models/$name" && cp -r "models/$name" "$OUT/models/$name"
      quantize "models/$name" "$OUT/models/$name-int8"
    done
    CAL=(--calibration-data "$DATA/imagenette/train")
    quantize "models/$DEFAULT" "$OUT/models/$DEFAULT-int8-fullrange" --name "$DEFAULT-int8-fullrange" --no-reduce-range
    quantize "models/$DEFAULT" "$OUT/models/$DEFAULT-int8-static" --name "$DEFAULT-int8-static" --method static "${CAL[@]}"
    quantize "models/$DEFAULT" "$OUT/models/$DEFAULT-int8-static-fullrange" --name "$DEFAULT-int8-static-fullrange" \
      --method static --no-reduce-range "${CAL[@]}"
    node --import tsx bench/int8-fidelity.ts --models-dir "$OUT/models" --photos "$DATA/photos" \
      --model $DEFAULT-int8 --model $BASELINE-int8 --model $DEFAULT-int8-fullrange \
      --model $DEFAULT-int8-static --model $DEFAULT-int8-static-fullrange | tee "$OUT/fidelity.md"
    pids=()
    for name in $DEFAULT $BASELINE; do
      node --import tsx src/cli/fewshot-benchmark.ts --models-dir "$OUT/models" \
        --data "$DATA/imagewoof" --data "$DATA/sport_balls" --data "$DATA/cifar10" \
        --model $name --model $name-int8 --max-test-per-class 100000 --pixels 0 \
        --out-json "$OUT/fewshot/$name.json" --out-md "$OUT/fewshot/$name.md" 2> "$OUT/fewshot/$name.log" &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done  # a failed benchmark stops the script (set -e); a bare wait would not
    pids=()
    for variant in fullrange static static-fullrange; do  # compared against the fp32 rows of $DEFAULT.md
      node --import tsx src/cli/fewshot-benchmark.ts --models-dir "$OUT/models" \
        --data "$DATA/imagewoof" --data "$DATA/sport_balls" --data "$DATA/cifar10" \
        --model $DEFAULT-int8-$variant --max-test-per-class 100000 --pixels 0 \
        --out-json "$OUT/fewshot/$variant.json" --out-md "$OUT/fewshot/$variant.md" 2> "$OUT/fewshot/$variant.log" &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    # README's two int8 few-shot tables (fp32 / int8 per cell, paired by the manifests in $OUT/models); the first
    # says whether the default's variant may ship (with the fidelity table's mean cosine >= 0.99: read it above)
    TABLE=(training/tools/int8_fewshot_table.py --models-dir "$OUT/models" --report "$OUT/fewshot/$DEFAULT.json" --report "$OUT/fewshot/$BASELINE.json")
    $PY_ROOT "${TABLE[@]}" | tee "$OUT/fewshot/defaults-table.md" || true
    if $PY_ROOT "${TABLE[@]}" --variant $DEFAULT-int8 > /dev/null; then
      echo "$DEFAULT-int8: every few-shot cell within 1 point of fp32 (publish needs the fidelity bar too)"
    else
      echo "$DEFAULT-int8: refused or a cell over 1 point (above): do not publish it"
    fi
    for variant in fullrange static static-fullrange; do TABLE+=(--report "$OUT/fewshot/$variant.json"); done
    $PY_ROOT "${TABLE[@]}" \
      --variant $DEFAULT-int8-fullrange --variant $DEFAULT-int8-static --variant $DEFAULT-int8-static-fullrange \
      | tee "$OUT/fewshot/variants-table.md" || true ;;
  publish)
    quantize "models/$DEFAULT" "models/$DEFAULT-int8" ;;
  *)
    echo "usage: $0 [measure|publish]" >&2; exit 2 ;;
esac

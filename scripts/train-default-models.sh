#!/usr/bin/env bash
# Trains the two shipped bundles (issue 5) on this machine's CPU: CL-MAE and the MAE baseline with the
# same settings and epochs on a seeded 4,096-image subset of Imagenette train, then the two ablations
# (no KL loss, no diversity loss) and their control for 3 epochs on 2,048 images.
# Every run resumes from its checkpoint when restarted. `publish` exports the two bundles into models/,
# writes the service's reference outputs and copies every run's log (not its checkpoint) to models/runs/.
# Usage: scripts/train-default-models.sh [main|ablations|publish]
set -euo pipefail
cd "$(dirname "$0")/../training"
PY=../.venv/bin/python
DATA=${DATA:-../../shared/data/imagenette}
COMMON=(--config vit_mini_p8_64 --data "$DATA/train" --eval-data "$DATA/val" --batch-size 64 --blr 1.5e-3 --limit-images 4096
        --warmup-epochs 1 --num-workers 1 --seed 0)

case "${1:-main}" in
  main)
    $PY -m clmae.train "${COMMON[@]}" --method clmae --epochs 6 --threads 2 --output-dir ../runs/clmae-vit-mini-p8-64 &
    $PY -m clmae.train "${COMMON[@]}" --method mae --epochs 6 --threads 1 --output-dir ../runs/mae-vit-mini-p8-64 &
    wait ;;
  ablations)
    ABL=(--method clmae --epochs 3 --limit-images 2048 --threads 2)
    $PY -m clmae.train "${COMMON[@]}" "${ABL[@]}" --output-dir ../runs/ablation-control
    $PY -m clmae.train "${COMMON[@]}" "${ABL[@]}" --lambda-kl 0 --output-dir ../runs/ablation-no-kl
    $PY -m clmae.train "${COMMON[@]}" "${ABL[@]}" --lambda-div 0 --output-dir ../runs/ablation-no-div ;;
  publish)
    for name in clmae-vit-mini-p8-64 mae-vit-mini-p8-64; do
      $PY -m clmae.export --checkpoint "../runs/$name/checkpoint.pt" --output "../models/$name"
      $PY -m clmae.tools.write_reference --bundle "../models/$name" --out "../test/fixtures/reference/$name.json"
    done
    for run in clmae-vit-mini-p8-64 mae-vit-mini-p8-64 ablation-control ablation-no-kl ablation-no-div; do
      [ -f "../runs/$run/log.jsonl" ] || continue
      mkdir -p "../models/runs/$run"
      cp -r "../runs/$run/log.jsonl" "../runs/$run/config.json" "../runs/$run/keep_scores" "../models/runs/$run/"
    done ;;
  *) echo "usage: $0 [main|ablations|publish]" >&2; exit 2 ;;
esac

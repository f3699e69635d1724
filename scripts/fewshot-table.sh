#!/usr/bin/env bash
# Runs the few-shot benchmark (the CL-MAE paper's protocol) on the three evaluation sets with the default
# model and the MAE baseline, writes models/fewshot/fewshot.json and fewshot.md, and regenerates README.md's
# few-shot table. Data: ../shared/data (override with FEWSHOT_DATA). Extra arguments go to the benchmark,
# e.g. `scripts/fewshot-table.sh --max-test-per-class 20` (default here: every test image; about 30 min
# on 2 cores, most of it the pixel baseline's logreg fits).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${FEWSHOT_DATA:-../shared/data}"
node --import tsx src/cli/fewshot-benchmark.ts \
  --data "$DATA/imagewoof" --data "$DATA/sport_balls" --data "$DATA/cifar10" \
  --model clmae-vit-mini-p8-64 --model mae-vit-mini-p8-64 --max-test-per-class 100000 \
  --out-json models/fewshot/fewshot.json --out-md models/fewshot/fewshot.md "$@"
node --import tsx scripts/fewshot-table.ts models/fewshot/fewshot.json README.md

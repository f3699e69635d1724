#!/usr/bin/env bash
# Turns finished scaling runs (issue 16) into committed results, safe to run while training continues:
# 1. copies every run's log.jsonl, config.json and keep_scores/ to models/runs/<run>/ (train-scaling-curve.sh logs);
# 2. for each finished run without an up-to-date result: exports its bundle into runs/scaling/<run>/bundle/
#    (never committed) and runs the few-shot benchmark with issue 16's protocol -> models/runs/<run>/fewshot.json
#    (training/tools/evaluate_scaling_runs.py; the pixel baseline once -> models/runs/scaling-pixels-16x16/);
# 3. regenerates the model card (models/README.md, models/card/) from the committed files.
# Re-run any time; it does only what is missing.
# Settings (environment): RUNS (runs/scaling), FEWSHOT_DATA (../shared/data: imagewoof, sport_balls, cifar10),
# NICE (10). Extra arguments go to evaluate_scaling_runs.py (e.g. --dry-run; --jobs 2 evaluates two runs side by side:
# the benchmark fits its probes on one thread). Never beside a training run: its two-thread steps slow down 5-7x.
# Then commit: git add models/runs models/README.md models/card && git commit -m "..." -- models/runs models/README.md models/card
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=$(cd "${RUNS:-runs/scaling}" && pwd)
DATA=$(cd "${FEWSHOT_DATA:-../shared/data}" && pwd)
NICE=${NICE:-10}

RUNS="$RUNS" scripts/train-scaling-curve.sh logs
nice -n "$NICE" .venv/bin/python training/tools/evaluate_scaling_runs.py --runs-dir "$RUNS" --data "$DATA" "$@"
nice -n "$NICE" .venv/bin/python training/tools/model_card.py --skip-readme
echo "commit: git add models/runs models/README.md models/card && git commit -m \"Scaling curve: logs and few-shot results\" -- models/runs models/README.md models/card"

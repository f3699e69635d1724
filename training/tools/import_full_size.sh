#!/usr/bin/env bash
# Imports one full-size ViT-L/16 MAE checkpoint and measures the import: wall time and peak RSS.
#
# No weights can be downloaded here, so the checkpoint is written with random weights in the layout of
# mae_pretrain_vit_large_full.pth (facebookresearch/mae): encoder 1024 wide x 24 blocks (16 heads,
# patch 16, 224 px) plus the dec512d8b decoder, 329 M parameters, 1.3 GB. The import is the one a user
# runs on the released file (README "Importing a released checkpoint"): every key checked, ONNX export of
# the encoder and decoder, onnxruntime parity at N = 1, 3 and K = 1, 49, 196, manifest validated.
#
#   bash training/tools/import_full_size.sh [work-dir]       # default /tmp/clmae-vit-l-import
#
# Prints /usr/bin/time -v's wall clock and maximum resident set size of the import alone, and the CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK="${1:-/tmp/clmae-vit-l-import}"
PYTHON=.venv/bin/python
export PYTHONPATH="$PWD/training${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$WORK"

CHECKPOINT="$WORK/mae_pretrain_vit_large_full.pth"
if [ ! -f "$CHECKPOINT" ]; then
  "$PYTHON" training/tools/released_checkpoints.py --layout mae-full --width 1024 --depth 24 --decoder-depth 8 \
    --out "$CHECKPOINT"
fi
ls -l "$CHECKPOINT"

/usr/bin/time -v -o "$WORK/time.txt" "$PYTHON" -m clmae.import_checkpoint --format mae --checkpoint "$CHECKPOINT" \
  --norm-pix-loss true --output "$WORK/mae-vit-large-p16-224" > "$WORK/import.log" 2>&1 \
  || { tail -20 "$WORK/import.log"; exit 1; }
ls -l "$WORK/mae-vit-large-p16-224"
grep -E 'Elapsed \(wall clock\)|Maximum resident set size' "$WORK/time.txt"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"

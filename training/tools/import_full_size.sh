#!/usr/bin/env bash
# Imports one full-size released-layout checkpoint and measures the import: wall time and peak RSS.
#
# No weights can be downloaded here, so the checkpoint is written with random weights in a released layout
# (facebookresearch/mae), then imported as a user imports the released file (README "Importing a released
# checkpoint"): every key checked, ONNX export, onnxruntime parity at N = 1, 3 and K = 1, 0.25 L, L,
# manifest validated.
#   large  mae_pretrain_vit_large_full.pth: ViT-L/16 (1024 wide, 24 blocks, 16 heads, 224 px) plus the
#          dec512d8b decoder; 329 M parameters, 1.3 GB
#   huge   mae_pretrain_vit_huge.pth: ViT-H/14 encoder (1280 wide, 32 blocks, 16 heads); 631 M parameters,
#          2.5 GB, past protobuf's 2 GB: its weights go to encoder.onnx.data
#
#   bash training/tools/import_full_size.sh [large|huge] [work-dir]   # default: large /tmp/clmae-vit-<size>-import
#
# Prints /usr/bin/time -v's wall clock and maximum resident set size of the import alone, and the CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE="${1:-large}"
WORK="${2:-/tmp/clmae-vit-$SIZE-import}"
PYTHON=.venv/bin/python
export PYTHONPATH="$PWD/training${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$WORK"

case "$SIZE" in
  large) FILE=mae_pretrain_vit_large_full.pth; MAKE=(--layout mae-full --width 1024 --depth 24 --decoder-depth 8)
         IMPORT=(--norm-pix-loss true); BUNDLE=mae-vit-large-p16-224 ;;
  huge)  FILE=mae_pretrain_vit_huge.pth; MAKE=(--layout mae-encoder --width 1280 --depth 32)
         IMPORT=(); BUNDLE=mae-vit-huge-p14-224 ;;
  *) echo "size must be large or huge, not $SIZE" >&2; exit 2 ;;
esac

CHECKPOINT="$WORK/$FILE"
if [ ! -f "$CHECKPOINT" ]; then
  "$PYTHON" training/tools/released_checkpoints.py "${MAKE[@]}" --out "$CHECKPOINT"
fi
ls -l "$CHECKPOINT"

/usr/bin/time -v -o "$WORK/time.txt" "$PYTHON" -m clmae.import_checkpoint --format mae --checkpoint "$CHECKPOINT" \
  "${IMPORT[@]}" --output "$WORK/$BUNDLE" > "$WORK/import.log" 2>&1 \
  || { tail -20 "$WORK/import.log"; grep -E 'Elapsed|Maximum resident' "$WORK/time.txt" || true; exit 1; }
ls -l "$WORK/$BUNDLE"
grep -E 'Elapsed \(wall clock\)|Maximum resident set size' "$WORK/time.txt"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"

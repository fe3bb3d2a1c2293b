#!/usr/bin/env bash
# Retrain the moving-shapes classifier that ships in the package (offline metrics:
# fd_moving_shapes and the motion / colour / shape accuracy of generated videos), score it on
# 1,000 held-out real videos, and copy it into cmdvideo/assets/moving-shapes-classifier.
#   bash scripts/train_classifier.sh [OUT]      (default OUT=runs/classifier)
set -euo pipefail
OUT=${1:-runs/classifier}
cmdvideo train classifier --config moving-shapes-classifier --out "$OUT"
cmdvideo eval classifier --classifier "$OUT" --num-videos 1000 --json > "$OUT/held_out.json"
rm -rf cmdvideo/assets/moving-shapes-classifier
mkdir -p cmdvideo/assets
cp -r "$OUT/classifier" cmdvideo/assets/moving-shapes-classifier
tail -n 1 "$OUT/held_out.json"

#!/usr/bin/env bash
# Reproduce the tiny autoencoder result in README.md / docs/figures (2-core CPU: about 75 min).
#   bash scripts/train_autoencoder_tiny.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/ae-tiny}
make install
BIN=.venv/bin
start=$(date +%s)
if [ -d "$OUT/checkpoints" ]; then resume=--resume; else resume=; fi
$BIN/cmdvideo train autoencoder --config tiny --data moving-shapes --out "$OUT" $resume
echo "training wall time: $(( $(date +%s) - start )) s"
# Held-out videos (data.eval_seed), never seen in training.
$BIN/cmdvideo eval autoencoder --model "$OUT" --num-videos 512 --json | tail -n 1 | tee "$OUT/eval.json"
mkdir -p docs/figures
cp "$OUT/training_curve.png" docs/figures/autoencoder_tiny_training_curve.png
mkdir -p results/autoencoder-tiny
cp "$OUT/config.yaml" "$OUT/metrics.jsonl" "$OUT/eval.json" results/autoencoder-tiny/
last=$(ls "$OUT"/previews/step-*.png | sort | tail -n 1)
cp "$last" docs/figures/autoencoder_tiny_reconstruction.png
cp "${last%.png}.gif" docs/figures/autoencoder_tiny_reconstruction.gif

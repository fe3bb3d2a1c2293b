#!/usr/bin/env bash
# Reproduce the tiny autoencoders of README.md / docs/figures (2-core CPU: about 2 h in all).
#   bash scripts/train_autoencoder_tiny.sh [PLAIN_DIR] [ANCHORED_DIR]
# 1. PLAIN_DIR (runs/ae-tiny): 4,000 steps of plain reconstruction (the paper's objective).
# 2. ANCHORED_DIR (runs/ae-anchor): 2,400 steps fine-tuning PLAIN_DIR with the content anchor
#    of the tiny config (MSE of the content frame to the middle frame, weight 5); the
#    autoencoder of the bundled pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
PLAIN=${1:-runs/ae-tiny}
ANCHORED=${2:-runs/ae-anchor}
make install
BIN=.venv/bin
mkdir -p docs/figures
run() {  # run OUT RESULTS FIGURE_PREFIX [train args...]
  local out=$1 results=$2 figure=$3
  shift 3
  local start resume=
  start=$(date +%s)
  if [ -d "$out/checkpoints" ]; then resume=--resume; fi
  OMP_NUM_THREADS=2 $BIN/cmdvideo train autoencoder --config tiny --data moving-shapes \
    --out "$out" $resume "$@"
  echo "training wall time ($out): $(( $(date +%s) - start )) s"
  # Held-out videos (data.eval_seed), never seen in training; 200 decomposition-probe pairs.
  $BIN/cmdvideo eval autoencoder --model "$out" --num-videos 512 --json | tail -n 1 \
    | tee "$out/eval.json"
  mkdir -p "$results"
  cp "$out/config.yaml" "$out/metrics.jsonl" "$out/eval.json" "$results/"
  cp "$out/training_curve.png" "docs/figures/${figure}_training_curve.png"
  local last
  last=$(ls "$out"/previews/step-*.png | sort | tail -n 1)
  cp "$last" "docs/figures/${figure}_reconstruction.png"
  cp "${last%.png}.gif" "docs/figures/${figure}_reconstruction.gif"
}
run "$PLAIN" results/autoencoder-tiny autoencoder_tiny --set autoencoder.content_anchor=0
run "$ANCHORED" results/autoencoder-tiny-anchor autoencoder_tiny_anchor --init "$PLAIN" \
  --max-steps 2400 --set train.preview_every=400 --set train.checkpoint_every=400

#!/usr/bin/env bash
# Reproduce the tiny autoencoders of README.md / docs/figures (2-core CPU: about 3 h in all).
#   bash scripts/train_autoencoder_tiny.sh [PLAIN_DIR] [ANCHORED_DIR] [REFINED_DIR]
# 1. PLAIN_DIR (runs/ae-tiny): 4,000 steps of plain reconstruction (the paper's objective).
# 2. ANCHORED_DIR (runs/ae-anchor): 2,400 steps fine-tuning PLAIN_DIR with the content anchor
#    of the tiny config (MSE of the content frame to the middle frame, weight 5).
# 3. REFINED_DIR (runs/ae-refine): 1,800 steps training only the decoder of ANCHORED_DIR, with
#    a convolutional refiner added (refine_channels 32); the encoder is frozen, so latents,
#    motion scale and a cache made with ANCHORED_DIR stay valid. The bundled pipeline's.
set -euo pipefail
cd "$(dirname "$0")/.."
PLAIN=${1:-runs/ae-tiny}
ANCHORED=${2:-runs/ae-anchor}
REFINED=${3:-runs/ae-refine}
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
run "$REFINED" results/autoencoder-tiny-refine autoencoder_tiny_refine --init "$ANCHORED" \
  --max-steps 1800 --set autoencoder.freeze_encoder=true \
  --set autoencoder.overrides.refine_channels=32 --set train.learning_rate=0.0005 \
  --set train.preview_every=300 --set train.checkpoint_every=300

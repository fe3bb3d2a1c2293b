#!/usr/bin/env bash
# Train the tiny content and motion diffusion models on a trained tiny autoencoder, in
# parallel (the two stages are independent; one CPU thread each on a 2-core machine), then
# assemble the pipeline folder.
#   bash scripts/train_generation_tiny.sh [AE_DIR] [OUT_ROOT]
# AE_DIR defaults to runs/ae-tiny (scripts/train_autoencoder_tiny.sh makes it).
set -euo pipefail
AE=${1:-runs/ae-tiny}
ROOT=${2:-runs}
CONTENT_STEPS=${CONTENT_STEPS:-1500}
MOTION_STEPS=${MOTION_STEPS:-5000}
THREADS=${THREADS:-1}
mkdir -p "$ROOT"
common=(--config tiny --autoencoder "$AE" --set train.preview_every=500 --set train.checkpoint_every=500)
OMP_NUM_THREADS=$THREADS cmdvideo train content "${common[@]}" --out "$ROOT/content-tiny" \
  --max-steps "$CONTENT_STEPS" > "$ROOT/content-tiny.log" 2>&1 &
content=$!
OMP_NUM_THREADS=$THREADS cmdvideo train motion "${common[@]}" --out "$ROOT/motion-tiny" \
  --max-steps "$MOTION_STEPS" > "$ROOT/motion-tiny.log" 2>&1 &
motion=$!
wait $content
wait $motion
cmdvideo pipeline assemble --autoencoder "$AE" --content "$ROOT/content-tiny" \
  --motion "$ROOT/motion-tiny" --out "$ROOT/pipeline-tiny"

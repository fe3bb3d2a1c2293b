#!/usr/bin/env bash
# Does pretraining the content model on single video frames (images) help? Pretrain on frames,
# then fine-tune on content frames, against training on content frames from scratch for the
# same number of steps; both log preview/val_loss (held-out content frames, fixed noise) every
# 50 steps. Class-conditioned, tiny config, on a trained tiny autoencoder.
#   bash scripts/content_pretrain_experiment.sh [AE_DIR] [OUT_ROOT]
set -euo pipefail
AE=${1:-runs/ae-tiny}
ROOT=${2:-runs/content-pretrain}
STEPS=${STEPS:-600}
THREADS=${THREADS:-1}
common=(--config tiny --autoencoder "$AE" --max-steps "$STEPS" --set content.condition=class
        --set train.preview_every=50 --set train.checkpoint_every=$STEPS)
mkdir -p "$ROOT"
OMP_NUM_THREADS=$THREADS cmdvideo train content "${common[@]}" --frames --out "$ROOT/frames" \
  > "$ROOT/frames.log" 2>&1
OMP_NUM_THREADS=$THREADS cmdvideo train content "${common[@]}" --init "$ROOT/frames" \
  --out "$ROOT/finetune" > "$ROOT/finetune.log" 2>&1 &
finetune=$!
OMP_NUM_THREADS=$THREADS cmdvideo train content "${common[@]}" --out "$ROOT/scratch" \
  > "$ROOT/scratch.log" 2>&1 &
scratch=$!
wait $finetune
wait $scratch
python scripts/figure_content_pretrain.py "$ROOT" docs/figures/content_pretrain_vs_scratch.png

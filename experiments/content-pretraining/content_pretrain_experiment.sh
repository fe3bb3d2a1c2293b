#!/usr/bin/env bash
# Does pretraining the content model on single video frames (images) help? Pretrain on frames,
# then fine-tune on content frames, against training on content frames from scratch for the
# same number of steps; both log preview/val_loss (held-out content frames, fixed noise) every
# 50 steps. Class-conditioned, ε-prediction (the recorded run; the tiny config now defaults to
# v-prediction), tiny config, on a trained tiny autoencoder. Run from anywhere; paths are
# relative to the repository root.
#   bash experiments/content-pretraining/content_pretrain_experiment.sh [AE_DIR] [OUT_ROOT]
# Writes OUT_ROOT/{frames,finetune,scratch}, copies their metrics into results/content-pretrain/
# and draws docs/figures/content_pretrain_vs_scratch.png.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../.."
AE=${1:-runs/ae-tiny}
ROOT=${2:-runs/content-pretrain}
STEPS=${STEPS:-600}
THREADS=${THREADS:-1}
PYTHON=${PYTHON:-python}
common=(--config tiny --autoencoder "$AE" --max-steps "$STEPS" --set content.condition=class
        --set content.prediction_type=epsilon
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
mkdir -p results/content-pretrain
for run in frames finetune scratch; do
  cp "$ROOT/$run/metrics.jsonl" "results/content-pretrain/$run-metrics.jsonl"
done
cp "$ROOT/scratch/config.yaml" results/content-pretrain/scratch-config.yaml
"$PYTHON" "$HERE/figure_content_pretrain.py" "$ROOT" docs/figures/content_pretrain_vs_scratch.png

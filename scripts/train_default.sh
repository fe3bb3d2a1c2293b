#!/usr/bin/env bash
# Retrain the bundled moving-shapes-tiny pipeline from nothing, on the CPU, in latent mode
# (configs/tiny-latent.yaml: 16 frames at 32x32, a frame VAE trained here, 4x8x8 latents):
#   1. the frame VAE (`cmdvideo train vae`), two cycles                   -> $ROOT/vae
#   2. a cache of the VAE's latents, and the CMD autoencoder trained on them with the content
#      anchor                                                              -> $ROOT/frames, ae
#   3. a latent cache of CACHE_VIDEOS training videos                     -> $ROOT/cache
#   4. content UNet and motion DiT from the cache, at the same time, one thread each, the
#      content model with a snapshot every 1,000 steps                    -> $ROOT/content, motion
#      and, beside them, the autoencoder's decoder refined (encoder frozen: the cache and the
#      diffusion models stay valid; 27.7 -> 28.5 dB)                      -> $ROOT/ae-refine
#   5. the decoder taught motion transfer with swap pairs (encoder still frozen: decode(content
#      of A, motion of B) must show A's look moving as B; videos rendered and VAE-encoded on
#      the fly), two cycles                                                -> $ROOT/ae-swap2
#   6. the shape-kind learning curve over the content snapshots           -> results/latent-default
#   7. assemble, score, and copy into the package (cmdvideo/assets)
#   bash scripts/train_default.sh [ROOT]     (default ROOT=runs/default)
# Every step resumes: run the script again after any interruption and it continues from the
# last checkpoint of the step it was in (finished steps are marked with a `done` file).
set -euo pipefail
ROOT=${1:-runs/default}
VAE_STEPS=${VAE_STEPS:-4000}
AE_STEPS=${AE_STEPS:-4000}
CACHE_VIDEOS=${CACHE_VIDEOS:-32000}
CONTENT_STEPS=${CONTENT_STEPS:-10000}
MOTION_STEPS=${MOTION_STEPS:-4000}
mkdir -p "$ROOT" results/latent-default

source "$(dirname "$0")/step.sh"  # step OUT CMD...: run once, resumable, timed
C=(--config tiny-latent)
VAE=(--set train.batch_size=16 --set train.learning_rate=0.001 --set train.checkpoint_every=100
     --set train.preview_every=250 --set train.log_every=25)
# two cosine cycles (the second continues the first): 2,000 steps reached 25.9 dB, too little
step "$ROOT/vae-phase1" train vae "${C[@]}" --max-steps 2000 --threads 2 "${VAE[@]}"
step "$ROOT/vae" train vae "${C[@]}" --max-steps "$VAE_STEPS" --threads 2 "${VAE[@]}" \
  --set "vae.init=$ROOT/vae-phase1" --set train.warmup_steps=50
V=(--set "autoencoder.vae=$ROOT/vae")
if [ ! -f "$ROOT/frames/cache.json" ]; then  # the VAE's latents, so the autoencoder skips it
  cmdvideo cache --frames "${C[@]}" "${V[@]}" --out "$ROOT/frames" --num-videos "$CACHE_VIDEOS" \
    --batch-size 64 --threads 2
fi
step "$ROOT/ae" train autoencoder "${C[@]}" "${V[@]}" --data "$ROOT/frames" \
  --max-steps "$AE_STEPS" --threads 2
if [ ! -f "$ROOT/cache/cache.json" ]; then
  cmdvideo cache "${C[@]}" "${V[@]}" --autoencoder "$ROOT/ae" --out "$ROOT/cache" \
    --num-videos "$CACHE_VIDEOS" --batch-size 64 --threads 2
fi
D=(--autoencoder "$ROOT/ae" --data "$ROOT/cache")
step "$ROOT/content" train content "${C[@]}" "${D[@]}" --max-steps "$CONTENT_STEPS" --threads 1 \
  --set train.batch_size=128 --set train.learning_rate=0.0005 --set train.warmup_steps=200 \
  --set train.checkpoint_every=250 --set train.preview_every=1000 --set train.snapshot_every=1000 &
content=$!
step "$ROOT/motion" train motion "${C[@]}" "${D[@]}" --max-steps "$MOTION_STEPS" --threads 1 \
  --set train.batch_size=32 --set train.warmup_steps=300 --set train.checkpoint_every=250 \
  --set train.preview_every=1000 &
motion=$!
step "$ROOT/ae-refine" train autoencoder "${C[@]}" "${V[@]}" --data "$ROOT/frames" \
  --max-steps 1800 --threads 1 --set "autoencoder.init=$ROOT/ae" \
  --set autoencoder.freeze_encoder=true --set autoencoder.overrides.refine_channels=32 \
  --set train.learning_rate=0.0005 --set train.warmup_steps=50 --set train.checkpoint_every=200 \
  --set train.preview_every=600 &
refine=$!
wait $content
wait $motion
wait $refine
# two cosine cycles (the second continues the first with another data order): after the first,
# swaps moved as B in 87 %; after the second in 94 %, reconstruction back to 28.3 dB
SWAP=(--data moving-shapes --threads 2 --set autoencoder.freeze_encoder=true
      --set autoencoder.content_anchor=0 --set autoencoder.swap_weight=1
      --set train.warmup_steps=50 --set train.checkpoint_every=200 --set train.preview_every=500)
step "$ROOT/ae-swap" train autoencoder "${C[@]}" "${V[@]}" "${SWAP[@]}" --max-steps 2000 \
  --set "autoencoder.init=$ROOT/ae-refine" --set train.learning_rate=0.0005
step "$ROOT/ae-swap2" train autoencoder "${C[@]}" "${V[@]}" "${SWAP[@]}" --max-steps 1500 \
  --set "autoencoder.init=$ROOT/ae-swap" --set train.learning_rate=0.0003 --set train.seed=1
python scripts/kind_curve.py "$ROOT/content" "$ROOT/ae" --out results/latent-default/kind-curve
cmdvideo pipeline assemble --autoencoder "$ROOT/ae-swap2" --content "$ROOT/content" \
  --motion "$ROOT/motion" --out "$ROOT/pipeline" --content-guidance 1.0 --motion-guidance 3.0 \
  --steps 25
cmdvideo eval generation --model "$ROOT/pipeline" --out "$ROOT/eval" --json | tail -n 1
rm -rf cmdvideo/assets/moving-shapes-tiny
cp -r "$ROOT/pipeline" cmdvideo/assets/moving-shapes-tiny
du -sh cmdvideo/assets/moving-shapes-tiny
cat "$ROOT/wall_times.txt"

#!/usr/bin/env bash
# Retrain the bundled pipeline (moving-shapes-tiny) from nothing on the CPU: `make bundle`.
# Every stage's settings live in configs/bundle/ (its README: what each step does and the wall
# times measured on the 2-core machine); this script only chains the steps:
#   1. the frame VAE                                                     -> $ROOT/vae
#   2. the VAE's latents of the training videos, with their factors     -> $ROOT/frames
#   3. the CMD autoencoder on them (reconstruction, content anchor, swap pairs) -> $ROOT/ae
#   4. (content frame, motion latent) pairs of the same videos           -> $ROOT/cache
#   5. content UNet and motion DiT, at the same time, one thread each    -> $ROOT/content, motion
#   6. one pipeline folder, scored, copied into the package              -> $BUNDLE_DEST
#   bash scripts/train_bundle.sh [ROOT]     (default ROOT=runs/bundle)
# Resumable: run it again after any interruption; finished steps are skipped (a `done` mark)
# and the step it was in continues from its last checkpoint (caches are rewritten whole).
# For tests and quick tries: BUNDLE_SET="key=value ..." is added to every step's config,
# BUNDLE_EVAL to `eval generation`; BUNDLE_DEST is where the pipeline goes (default: the package).
set -euo pipefail
ROOT=${1:-runs/bundle}
DEST=${BUNDLE_DEST-cmdvideo/assets/moving-shapes-tiny}
CFG=configs/bundle
mkdir -p "$ROOT"
source "$(dirname "$0")/step.sh"  # step OUT CMD...: run once, resumable, timed
S=()
for pair in ${BUNDLE_SET:-}; do S+=(--set "$pair"); done
VAE=(--set "autoencoder.vae=$ROOT/vae" "${S[@]}")
T=(--threads 2)  # the steps in a row use both cores; the two diffusion stages one each
step "$ROOT/vae" train vae --config "$CFG/vae.yaml" "${S[@]}" "${T[@]}"
step "$ROOT/frames" cache --frames --config "$CFG/autoencoder.yaml" "${VAE[@]}" --batch-size 64 \
  "${T[@]}"
step "$ROOT/ae" train autoencoder --config "$CFG/autoencoder.yaml" "${VAE[@]}" \
  --data "$ROOT/frames" "${T[@]}"
step "$ROOT/cache" cache --config "$CFG/autoencoder.yaml" "${VAE[@]}" --autoencoder "$ROOT/ae" \
  --data "$ROOT/frames" --batch-size 64 "${T[@]}"
D=(--autoencoder "$ROOT/ae" --data "$ROOT/cache" --threads 1 "${S[@]}")
step "$ROOT/content" train content --config "$CFG/content.yaml" "${D[@]}" &
content=$!
step "$ROOT/motion" train motion --config "$CFG/motion.yaml" "${D[@]}" &
motion=$!
# A script's background jobs ignore Ctrl-C (SIGINT): pass it on to both stages as SIGTERM (their
# checkpoints are written atomically, so the next run resumes from the last one).
trap 'pkill -TERM -P "$content,$motion"; kill -TERM "$content" "$motion" 2>/dev/null; exit 130' \
  INT TERM
wait $content
wait $motion
trap - INT TERM
step "$ROOT/pipeline" pipeline assemble --autoencoder "$ROOT/ae" --content "$ROOT/content" \
  --motion "$ROOT/motion" --content-guidance 3.0 --motion-guidance 3.0 --guidance-rescale 0.7 \
  --sampler dpm --timestep-spacing trailing --steps 8
# shellcheck disable=SC2086  # BUNDLE_EVAL: words
cmdvideo eval generation --model "$ROOT/pipeline" --out "$ROOT/eval" --json ${BUNDLE_EVAL:-} |
  tail -n 1
if [ -n "$DEST" ]; then
  rm -rf "$DEST"
  cp -r "$ROOT/pipeline" "$DEST"
  rm -f "$DEST/done"
  du -sh "$DEST"
fi
cat "$ROOT/wall_times.txt"

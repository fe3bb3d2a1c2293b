"""The moving-shapes world: what a video is (its factors: shapes, colours, motion) and how the
factors are drawn, in the two worlds (`WORLDS`, see `cmdvideo.data.moving_shapes`), with the
geometry both the sampler and the renderer share (trajectories, outlines).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .motions import BUILT_IN, FREE_PATH, WorldMotion, motion_names, world_motion
from .paths import draw_path, path_at

# Class id = index in this tuple; keep the order stable (checkpoints store class ids).
MOTIONS: tuple[str, ...] = BUILT_IN
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
        name: one of the world's motions (`cmdvideo.data.motions`).
        speed: amount of motion over the whole clip: displacement as a fraction of the frame
            (translations, bounce height), or scaled by the rotation / growth rate.
        phase: start angle of the orbit (rotate, circles) or of the |sin| bounce, in radians.
        path: the "path" motion's waypoints, ((x, y), ...) in [0, 1] from the top-left corner
            (`cmdvideo.data.paths`): where the first shape's centre goes; empty otherwise.
    """

    name: str
    speed: float
    phase: float = 0.0
    path: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class VideoFactors:
    """Everything that determines a video: appearance and motion."""

    appearance: Appearance
    motion: Motion

    @property
    def label(self) -> int:
        """Motion class id (its place among the world's motions); -1 for a free path."""
        names = motion_names()
        return names.index(self.motion.name) if self.motion.name in names else -1

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
        motion = {**data["motion"], "path": tuple(map(tuple, data["motion"].get("path", ())))}
        return cls(appearance, Motion(**motion))


def _color_distance(a: str, b: str) -> float:
    return math.dist(COLORS[a], COLORS[b])


def _sample_colors(rng: np.random.Generator, num_shapes: int) -> tuple[str, list[str]]:
    """(background, shape colours): distinct shape colours, a background that contrasts with
    each (by at least `_MIN_CONTRAST` in RGB)."""
    names = list(COLORS)
    shape_colors = [names[i] for i in rng.choice(len(names), size=num_shapes, replace=False)]
    backgrounds = [
        n for n in names if all(_color_distance(n, c) >= _MIN_CONTRAST for c in shape_colors)
    ]
    if not backgrounds:  # cannot happen with the palette above; keep the failure explicit
        raise RuntimeError(f"no background contrasts with {shape_colors}")
    return backgrounds[int(rng.integers(len(backgrounds)))], shape_colors


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
        motion: one of the world's motions; None draws one of them uniformly.
        world: one of `WORLDS` (module docstring): how shapes are sized, placed and turned.

    Returns:
        `VideoFactors` whose shapes have distinct colours and a background that differs (by at
        least `_MIN_CONTRAST` in RGB) from every shape colour.
    """
    check_world(world)
    if motion is None:
        names = motion_names()
        motion = names[int(rng.integers(len(names)))]
    world_motion(motion)  # a ValueError naming the world's motions
    if num_shapes is None:
        num_shapes = int(rng.integers(1, 3))
    if not 1 <= num_shapes <= MAX_SHAPES:
        raise ValueError(f"num_shapes must be between 1 and {MAX_SHAPES}, got {num_shapes}")

    background, shape_colors = _sample_colors(rng, num_shapes)
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
    phase, texture_seed = _sample_phase_and_texture(rng, motion)
    return VideoFactors(
        Appearance(background, tuple(shapes), texture_seed), Motion(motion, speed, phase)
    )


# Path videos: one shape, smaller than the upright world's one shape so that it has room to go.
PATH_SIZES = (0.12, 0.18)


def sample_path_factors(rng: np.random.Generator, family: str) -> VideoFactors:
    """One upright shape whose centre follows a path of ``family`` (`cmdvideo.data.paths`),
    inside the frame; colours as `sample_factors` draws them."""
    background, (color,) = _sample_colors(rng, 1)
    kind = SHAPES[int(rng.integers(len(SHAPES)))]
    size = float(rng.uniform(*PATH_SIZES))
    path = draw_path(rng, family, radius=_CIRCUMRADIUS[kind] * size + _UPRIGHT_MARGIN)
    x, y = (float(v) for v in path_at(path, 0.5)[0])
    texture_seed = int(rng.integers(2**31))
    motion = Motion(FREE_PATH.name, 0.0, 0.0, tuple(map(tuple, path.tolist())))
    return VideoFactors(
        Appearance(background, (ShapeSpec(kind, color, size, x, y, 0.0),), texture_seed), motion
    )


def centres(factors: VideoFactors, num_frames: int) -> np.ndarray:
    """(T, 2) float32: the first shape's centre (x, y) in every frame, fractions of the frame
    from the top-left corner (a circle's orbit included)."""
    s = np.linspace(0.0, 1.0, num_frames)
    x, y, _, _ = _outline_track(factors.appearance.shapes[0], factors.motion, s)
    return np.stack([x, y], axis=1).astype(np.float32)


# The upright world: equal-area radius per number of shapes (Motion.speed per motion: its
# `WorldMotion.speeds`).
_UPRIGHT_SIZES = {1: (0.22, 0.32), 2: (0.15, 0.22), 3: (0.12, 0.18)}
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
    x, y, size, angle = _outline_track(shape, motion, np.linspace(0.0, 1.0, 65))  # (S,) each
    v = _vertices(shape.kind)  # (N, 2)
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]  # (S, 1)
    vx = (cos * v[:, 0] - sin * v[:, 1]) * size[:, None] + x[:, None]  # (S, N): turned by angle
    vy = (sin * v[:, 0] + cos * v[:, 1]) * size[:, None] + y[:, None]
    return float(vx.min()), float(vx.max()), float(vy.min()), float(vy.max())


def _sample_phase_and_texture(rng: np.random.Generator, motion: str) -> tuple[float, int]:
    """The motion's phase and the texture seed, drawn in this order by both worlds."""
    phase = world_motion(motion).draw_phase(rng)
    return phase, int(rng.integers(2**31))


def _sample_upright(
    rng: np.random.Generator, background: str, colors: list[str], motion: str
) -> VideoFactors:
    """Factors of the upright world (module docstring): upright, large, inside the frame."""
    n = len(colors)
    kinds = [SHAPES[int(k)] for k in rng.integers(len(SHAPES), size=n)]
    sizes = rng.uniform(*_UPRIGHT_SIZES[n], size=n)
    kind_of_motion = world_motion(motion)
    low, high, least = kind_of_motion.speeds
    speed = float(rng.uniform(low, high))
    phase, texture_seed = _sample_phase_and_texture(rng, motion)  # drawn: the same stream
    phase = kind_of_motion.upright_phase(phase)
    spread = _UPRIGHT_SPREAD[n]
    growth = kind_of_motion.growth(high)
    for _ in range(400):  # bounded and deterministic: shrink until it fits
        moves = Motion(motion, speed, phase)
        boxes = [
            trajectory_box(ShapeSpec(k, c, float(r), 0.0, 0.0, 0.0), moves)
            for k, c, r in zip(kinds, colors, sizes)
        ]
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
                    >= growth
                    * (_CIRCUMRADIUS[kinds[i]] * sizes[i] + _CIRCUMRADIUS[kinds[j]] * sizes[j])
                    + _UPRIGHT_GAP
                    for i in range(n)
                    for j in range(i)
                )
                if apart:
                    shapes = tuple(
                        ShapeSpec(k, c, float(r), x, y, 0.0)
                        for k, c, r, (x, y) in zip(kinds, colors, sizes, centres)
                    )
                    return VideoFactors(Appearance(background, shapes, texture_seed), moves)
        if speed > least:
            speed = max(least, speed * 0.95)
        else:
            sizes = sizes * 0.95
    raise RuntimeError(f"no placement of {kinds} moving {motion} fits the frame")  # unreachable


def _check_factors(factors: VideoFactors) -> None:
    world_motion(factors.motion.name)  # a ValueError naming the world's motions
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
    x = np.full_like(s, shape.x)
    y = np.full_like(s, shape.y)
    size = np.full_like(s, shape.size)
    angle = np.full_like(s, shape.angle)
    moves: WorldMotion = world_motion(motion.name)
    return moves.state(x, y, size, angle, motion, s)


def _outline_track(shape: ShapeSpec, motion: Motion, s: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-frame (x, y, size, angle) of the drawn outline: `_trajectory`, with a circle's orbit
    added to its centre (the outline runs around it, as `render_video` draws it)."""
    x, y, size, angle = _trajectory(shape, motion, s)
    orbit = world_motion(motion.name).orbit(shape.kind, motion.speed, motion.phase, s)
    if orbit is not None:
        radius, theta = orbit
        x, y = x + radius * np.cos(theta), y + radius * np.sin(theta)
    return x, y, size, angle

"""The moving-shapes world's motions, each one object: how it moves a shape over the clip, how
fast the world draws it, the phrase its captions use, and the rule the hand-written check
(`cmdvideo.evaluation.motion_check`) reads it by. A new motion is one more `WorldMotion` in
`WORLD_MOTIONS` (or :func:`register` for one of your own): sampling, rendering, captions,
prompt parsing and the check all take it from there.

Time ``s`` runs over [0, 1] across the clip, ``u = s - 0.5`` from its middle: a shape's
`ShapeSpec` holds at mid-clip. Positions and sizes are fractions of the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .paths import path_at

# Drawn by the upright world as (low, high, least): Motion.speed in [low, high), reduced
# towards `least` (then the sizes shrink) until every shape stays inside the frame.
_TRANSLATE_SPEEDS = (0.22, 0.36, 0.18)  # net displacement, a fraction of the frame
_GROWTH_SPEEDS = (0.25, 0.40, 0.20)  # size x e^(+-0.75 speed) at the ends: 1.2-1.35x
_GROWTH_RATE = 1.5  # grow/shrink: log size changes by speed * this over the clip
_ROTATION_RATE = 2.0  # rotate: angle changes by speed * this (radians) over the clip
_BOUNCES = 1.5  # bounce: number of half-periods of |sin| over the clip
# Circles "rotate" by orbiting a small circle (radius as a fraction of min(H, W)), faster
# than squares turn so that the displacement is a few pixels.
_ORBIT_RADIUS, _ORBIT_RATE = 0.1, 6.0
# Upright world: every circle orbits the same way (its mid-clip heading down-left, a direction
# no translation class has), as every square and triangle turns the same way. The random
# world draws the phase, which leaves a circle's "rotate" a short arc in any direction.
_UPRIGHT_ORBIT_PHASE = math.pi / 4
# The check: least net centroid displacement of a translation, a fraction of the frame
_LEAST_TRANSLATION = 0.15


@dataclass(frozen=True)
class WorldMotion:
    """One motion of the world. Subclasses override what differs from standing still.

    Attributes:
        name: the class name (its class id is its place in `WORLD_MOTIONS`).
        phrase: what captions say ("moving left", "rotating").
        speeds: (low, high, least) of Motion.speed in the upright world.
        check_rank: the order in which the check tries the rules (lower first).
    """

    name: str
    phrase: str
    speeds: tuple[float, float, float] = _TRANSLATE_SPEEDS
    check_rank: int = 50

    def draw_phase(self, rng: np.random.Generator) -> float:
        """The phase the world draws for it (drawn from ``rng`` only where it has one)."""
        return 0.0

    def upright_phase(self, drawn: float) -> float:
        """The phase the upright world uses, given the one drawn."""
        return drawn

    def state(self, x, y, size, angle, motion, s: np.ndarray):
        """Per-frame (x, y, size, angle) of a shape whose mid-clip state is given, (T,) each;
        ``motion``: the video's `Motion` factors (speed, phase, path)."""
        return x, y, size, angle

    def orbit(self, kind: str, speed: float, phase: float, s: np.ndarray):
        """(radius, angle per frame) of a circle the outline's centre runs around, or None."""
        return None

    def growth(self, speed: float) -> float:
        """The most a shape's size is multiplied by over the clip (for spacing shapes)."""
        return 1.0

    def seen(self, features: dict[str, float]) -> bool:
        """Whether a video's foreground statistics (`motion_features`) show this motion."""
        return False


@dataclass(frozen=True)
class Translation(WorldMotion):
    """A straight move at constant speed; (dx, dy) is the unit direction, y down."""

    dx: float = 0.0
    dy: float = 0.0

    def state(self, x, y, size, angle, motion, s):
        u = s - 0.5
        return x + self.dx * motion.speed * u, y + self.dy * motion.speed * u, size, angle

    def seen(self, features):
        dx, dy = features["dx"], features["dy"]
        if math.hypot(dx, dy) <= _LEAST_TRANSLATION:
            return False
        # the nearest of the eight compass directions is this one's
        angle = math.degrees(math.atan2(-dy, dx)) % 360
        mine = math.degrees(math.atan2(-self.dy, self.dx)) % 360
        return int(round(angle / 45) % 8) == int(round(mine / 45) % 8)


@dataclass(frozen=True)
class Growth(WorldMotion):
    """The size changes exponentially: ``sign`` +1 grows, -1 shrinks."""

    sign: float = 1.0
    speeds: tuple[float, float, float] = _GROWTH_SPEEDS
    check_rank: int = 10

    def state(self, x, y, size, angle, motion, s):
        return x, y, size * np.exp(self.sign * _GROWTH_RATE * motion.speed * (s - 0.5)), angle

    def growth(self, speed):
        return math.exp(_GROWTH_RATE * 0.5 * speed)

    def seen(self, features):  # the area changes by more than e^0.4
        return self.sign * features["log_area_change"] > 0.4


@dataclass(frozen=True)
class Bounce(WorldMotion):
    """A ball over a floor at y + speed / 2: |sin| is the height above the floor."""

    check_rank: int = 20

    def draw_phase(self, rng):
        # |sin| at s=0 and s=1 differ by >= 0.2 for phases in [0, 0.2 pi] (1.5 bounces).
        return float(rng.uniform(0.0, 0.2 * math.pi))

    def state(self, x, y, size, angle, motion, s):
        height = 0.5 - np.abs(np.sin(math.pi * _BOUNCES * s + motion.phase))
        return x, y + motion.speed * height, size, angle

    def seen(self, features):  # up and down by > 5 %, a path 1.6x its net move, not sideways
        f = features
        return (
            min(f["y_up"], f["y_down"]) > 0.05
            and f["y_path"] > 1.6 * abs(f["dy"])
            and abs(f["dx"]) < 0.1
        )


@dataclass(frozen=True)
class Rotation(WorldMotion):
    """Turning on the spot; a circle, the same at every angle, orbits a small circle instead."""

    speeds: tuple[float, float, float] = (0.45, 0.60, 0.45)  # 52-69 degrees, upright mid-clip
    check_rank: int = 90

    def draw_phase(self, rng):
        return float(rng.uniform(0.0, 2 * math.pi))

    def upright_phase(self, drawn):
        return _UPRIGHT_ORBIT_PHASE

    def state(self, x, y, size, angle, motion, s):
        return x, y, size, angle + _ROTATION_RATE * motion.speed * (s - 0.5)

    def orbit(self, kind, speed, phase, s):
        if kind != "circle":
            return None
        return _ORBIT_RADIUS, _ORBIT_RATE * speed * (s - 0.5) + phase

    def seen(self, features):  # the shapes stay in place: turning changes the pixels
        return math.hypot(features["dx"], features["dy"]) <= _LEAST_TRANSLATION


@dataclass(frozen=True)
class FollowPath(WorldMotion):
    """Along the video's own waypoints (`Motion.path`, see `cmdvideo.data.paths`): the first
    shape's centre on them, any other shape moved alike. Not a class: a path is given, not
    named, so captions say no motion and the check measures the distance to the path."""

    check_rank: int = 100

    def state(self, x, y, size, angle, motion, s):
        offset = path_at(motion.path, s) - path_at(motion.path, 0.5)  # (T, 2)
        return x + offset[:, 0], y + offset[:, 1], size, angle


FREE_PATH = FollowPath("path", "")


_DIAGONAL = math.sqrt(0.5)

# Class id = place in this list; keep the order stable (checkpoints store class ids).
WORLD_MOTIONS: list[WorldMotion] = [
    Translation("left", "moving left", dx=-1.0),
    Translation("right", "moving right", dx=1.0),
    Translation("up", "moving up", dy=-1.0),
    Translation("down", "moving down", dy=1.0),
    # diagonals move by `speed` along each axis (not along the diagonal)
    Translation("up-left", "moving up and left", dx=-1.0, dy=-1.0),
    Translation("down-right", "moving down and right", dx=1.0, dy=1.0),
    Rotation("rotate", "rotating"),
    Growth("grow", "growing", sign=1.0),
    Growth("shrink", "shrinking", sign=-1.0),
    Bounce("bounce", "bouncing"),
]


def world_motion(name: str) -> WorldMotion:
    """The motion called ``name``, or a ValueError naming the world's motions."""
    for motion in (*WORLD_MOTIONS, FREE_PATH):
        if motion.name == name:
            return motion
    names = (*(m.name for m in WORLD_MOTIONS), FREE_PATH.name)
    raise ValueError(f"unknown motion {name!r}; choose one of {names}")


def register(motion: WorldMotion) -> int:
    """Add a motion of your own to the world (after the ten: their class ids stay); returns its
    class id. Sampling, rendering, captions, prompt parsing and the check know it from then on
    (a model trained before knows only the classes it was trained on)."""
    taken = (*WORLD_MOTIONS, FREE_PATH)
    if any(m.name == motion.name or m.phrase == motion.phrase for m in taken):
        raise ValueError(f"the world already has a motion called {motion.name!r} or said so")
    WORLD_MOTIONS.append(motion)
    return len(WORLD_MOTIONS) - 1


def unregister(name: str) -> None:
    """Remove a motion :func:`register` added (the built-in ten stay)."""
    motion = world_motion(name)
    if WORLD_MOTIONS.index(motion) < len(BUILT_IN):
        raise ValueError(f"{name!r} is one of the world's own motions; it cannot be removed")
    WORLD_MOTIONS.remove(motion)


BUILT_IN: tuple[str, ...] = tuple(m.name for m in WORLD_MOTIONS)


def motion_names() -> tuple[str, ...]:
    """The world's motion class names, in class-id order (the ten, then any registered)."""
    return tuple(m.name for m in WORLD_MOTIONS)


def motion_of_phrase(text: str) -> str | None:
    """The motion a lower-case prompt names by its phrase (the longest phrase found), or None."""
    found = [m for m in WORLD_MOTIONS if m.phrase in text]
    return max(found, key=lambda m: len(m.phrase)).name if found else None


def check_motion(features: dict[str, float]) -> str:
    """The first motion, in check order, whose rule the features satisfy, else "other"."""
    for motion in sorted(WORLD_MOTIONS, key=lambda m: m.check_rank):
        if motion.seen(features):
            return motion.name
    return "other"

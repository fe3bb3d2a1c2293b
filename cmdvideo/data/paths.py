"""Free paths: where a shape's centre goes over the clip, as waypoints in [0, 1] from the frame's
top-left corner (x right, y down), spread evenly over the clip, straight in between.

The same form serves the user (``--path "x,y x,y ..."``, ``trajectory=[(x, y), ...]``), the
world (path videos drawn from `TRAINING_FAMILIES`) and the check (held-out `HELD_OUT_FAMILIES`:
shapes no world class and no training family draws, e.g. a V or an L).
"""

from __future__ import annotations

import math

import numpy as np

# Drawn paths keep the centre this far from the edges (a fraction of the frame), plus the
# shape's own radius where the caller gives it.
PATH_MARGIN = 0.02
# The least a drawn path moves: its waypoints span at least this much (a fraction of the frame).
_LEAST_SPAN = 0.25


def parse_path(text: str, name: str = "--path") -> np.ndarray:
    """``"x,y x,y ..."`` -> (K, 2) float waypoints, checked (:func:`check_path`); a ValueError
    naming ``name`` for text that does not parse."""
    try:
        points = [tuple(float(v) for v in pair.split(",")) for pair in text.split()]
    except ValueError:
        points = None
    if not points or any(len(p) != 2 for p in points):
        raise ValueError(
            f"{name} must be points 'x,y x,y ...' (numbers in [0, 1] from the top-left "
            f"corner, at least two), got {text!r}"
        )
    return check_path(points, name)


def check_path(points, name: str = "trajectory") -> np.ndarray:
    """Waypoints as a (K, 2) float array: K >= 2, finite, each coordinate in [0, 1]; else a
    ValueError naming ``name``."""
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"{name} must be (x, y) points, a (K, 2) array; got {points!r}")
    if len(array) < 2:
        raise ValueError(f"{name} needs at least two points (where to start, where to go)")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise ValueError(
            f"{name} points must be in [0, 1] (fractions of the frame from the top-left "
            f"corner), got {array.round(3).tolist()}"
        )
    return array


def path_at(points, s) -> np.ndarray:
    """(S, 2): where the path is at times ``s`` in [0, 1] (the waypoints spread evenly over the
    clip, the first at 0 and the last at 1, straight in between)."""
    points = np.asarray(points, dtype=np.float64)
    at = np.linspace(0.0, 1.0, len(points))
    s = np.atleast_1d(np.asarray(s, dtype=np.float64))
    return np.stack([np.interp(s, at, points[:, 0]), np.interp(s, at, points[:, 1])], axis=1)


def path_track(points, num_frames: int) -> np.ndarray:
    """(T, 2): the centre in every frame of a clip of ``num_frames``."""
    return path_at(points, np.linspace(0.0, 1.0, num_frames))


def _fit(points: np.ndarray, rng: np.random.Generator, margin: float) -> np.ndarray:
    """Points of a path shape (any position, any size) scaled to fit within [margin,
    1 - margin], at a random size of what fits and a random place."""
    points = points - points.min(axis=0)
    span = points.max(axis=0)
    room = 1 - 2 * margin
    scale = room / max(span.max(), 1e-9) * rng.uniform(0.55, 1.0)
    points = points * scale
    offset = margin + rng.uniform(0, 1, size=2) * (room - points.max(axis=0))
    return points + offset


def _rotated(points: np.ndarray, angle: float) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    return points @ np.array([[cos, sin], [-sin, cos]])


def _curve(rng, n: int = 6) -> np.ndarray:
    """A smooth random curve: a random walk whose heading turns a little at each waypoint."""
    heading, turn = rng.uniform(0, 2 * math.pi), rng.normal(0, 0.5)
    steps = []
    for _ in range(n - 1):
        heading += turn + rng.normal(0, 0.3)
        steps.append((math.cos(heading), math.sin(heading)))
    return np.concatenate([[[0.0, 0.0]], np.cumsum(steps, axis=0)])


def _turn(rng) -> np.ndarray:
    """Two straight legs of random lengths at a random angle (30-150 degrees between them)."""
    first, second = rng.uniform(0.5, 1.0, size=2)
    bend = rng.uniform(math.pi / 6, 5 * math.pi / 6) * rng.choice([-1, 1])
    legs = np.array([[0.0, 0.0], [first, 0.0], [first + second * math.cos(bend), 0.0]])
    legs[2, 1] = second * math.sin(bend)
    return _rotated(legs, rng.uniform(0, 2 * math.pi))


def _stop_and_go(rng) -> np.ndarray:
    """A straight line with a rest: go, stay (two waypoints at the same place), go on."""
    stop = rng.uniform(0.3, 0.7)
    line = np.array([[0.0, 0.0], [stop, 0.0], [stop, 0.0], [1.0, 0.0]])
    return _rotated(line, rng.uniform(0, 2 * math.pi))


def _v(rng) -> np.ndarray:
    return np.array([[0.0, 0.0], [0.5, 1.0], [1.0, 0.0]]) * (1, rng.choice([-1, 1]))


def _arc(rng, n: int = 7) -> np.ndarray:
    a = np.linspace(0, rng.uniform(0.6, 1.0) * math.pi, n) * rng.choice([-1, 1])
    return _rotated(np.stack([np.cos(a), np.sin(a)], axis=1), rng.uniform(0, 2 * math.pi))


def _l(rng) -> np.ndarray:
    corner = np.array([[0.0, 0.0], [0.0, 1.0], [0.7, 1.0]])
    return _rotated(corner, rng.integers(4) * math.pi / 2)


def _diagonal(rng) -> np.ndarray:
    return np.array([[0.0, 0.0], [1.0, 1.0]]) * (rng.choice([-1, 1]), rng.choice([-1, 1]))


TRAINING_FAMILIES = {"curve": _curve, "turn": _turn, "stop-and-go": _stop_and_go}
# Checked on, never drawn for training (a stop-and-go drawn again is a new one).
HELD_OUT_FAMILIES = {
    "v": _v,
    "arc": _arc,
    "l": _l,
    "diagonal": _diagonal,
    "stop-and-go": _stop_and_go,
}


def draw_path(rng: np.random.Generator, family: str, radius: float = 0.0) -> np.ndarray:
    """(K, 2) waypoints of one path of ``family`` (a key of `TRAINING_FAMILIES` or
    `HELD_OUT_FAMILIES`), inside the frame for a shape of circumradius ``radius`` (a fraction
    of the frame), spanning at least a quarter of it."""
    maker = TRAINING_FAMILIES.get(family) or HELD_OUT_FAMILIES.get(family)
    if maker is None:
        families = sorted({*TRAINING_FAMILIES, *HELD_OUT_FAMILIES})
        raise ValueError(f"unknown path family {family!r}; choose one of {families}")
    margin = PATH_MARGIN + radius
    if margin >= 0.5 - _LEAST_SPAN / 2:
        raise ValueError(f"a shape of radius {radius} leaves no room for a path")
    while True:
        points = _fit(maker(rng), rng, margin)
        if np.ptp(points, axis=0).max() >= _LEAST_SPAN:
            return check_path(points, family)

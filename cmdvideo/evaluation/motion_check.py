"""Hand-written checks for moving-shapes videos (no learned weights): which of the ten motion
classes does a video show, and which colours (``color_check``: background and, for one shape,
the shape's colour — the nearest palette colour to the median border / foreground pixel)?

How: the background colour is the median of the frame borders; foreground = pixels farther than
``threshold`` from it (RGB distance in [0, 1] units). Per frame we take the foreground area and
centroid, then decide in this order (the rules live with the motions, `cmdvideo.data.motions`):

1. grow / shrink — the foreground area changes by a factor > e^0.4 (least-squares slope of
   log-area over the clip);
2. bounce — the vertical centroid path goes both up and down by > 5 % of the frame and is at
   least 1.6× longer than its net displacement;
3. a translation — the net centroid displacement (linear fit) is > 15 % of the frame: the
   nearest of the eight compass directions (up-right and down-left are not classes: "other");
4. rotate — otherwise (the shapes stay in place; rotation or orbiting changes the pixels).

Measured on real videos it is right on most of them (``tests/evaluation/test_motion_check.py`` checks
>= 85 % on held-out videos; the README quotes the figure). It is a rough check for the generation
issue; the trained classifier of the evaluation issue replaces it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..data.motions import check_motion
from ..data.moving_shapes import COLORS, SHAPES, _signed_distance


def _to_unit(video: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, T, H, W) in [-1, 1] (torch, the dataset's layout) -> (T, H, W, 3) in [0, 1]."""
    if torch.is_tensor(video):
        video = video.detach().float().cpu().numpy()
    return ((np.asarray(video).transpose(1, 2, 3, 0) + 1) / 2).clip(0, 1)


def _foreground(frames: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Background RGB (the median of the frame borders) and foreground mask (T, H, W): pixels
    farther than ``threshold`` from it, of frames (T, H, W, 3) in [0, 1] (`_to_unit`)."""
    border = np.concatenate(
        [
            frames[:, 0].reshape(-1, 3),
            frames[:, -1].reshape(-1, 3),
            frames[:, :, 0].reshape(-1, 3),
            frames[:, :, -1].reshape(-1, 3),
        ]
    )
    background = np.median(border, axis=0)
    return background, np.linalg.norm(frames - background, axis=-1) > threshold


def centroids(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(area, x, y), each (T,), of a foreground mask (T, H, W): pixels per frame and their
    centroid as fractions of the frame from the top-left corner (pixel centres at
    (i + 0.5) / size); x and y NaN where a frame is empty."""
    t, h, w = mask.shape
    area = mask.reshape(t, -1).sum(1).astype(np.float64)
    ys, xs = np.mgrid[0:h, 0:w]
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (mask * (xs + 0.5)).reshape(t, -1).sum(1) / area / w
        cy = (mask * (ys + 0.5)).reshape(t, -1).sum(1) / area / h
    return area, cx, cy


def motion_features(video, threshold: float = 0.25) -> dict[str, float]:
    """Foreground statistics of one video (3, T, H, W) in [-1, 1]."""
    _, mask = _foreground(_to_unit(video), threshold)  # (T, H, W)
    t = mask.shape[0]
    area, cx, cy = centroids(mask)
    frames_idx = np.arange(t)
    valid = area > 0
    if valid.sum() < 2:
        return {
            "log_area_change": 0.0,
            "dx": 0.0,
            "dy": 0.0,
            "y_path": 0.0,
            "y_up": 0.0,
            "y_down": 0.0,
            "empty": 1.0,
        }
    fit = np.polyfit(frames_idx[valid], np.log(area[valid]), 1)[0] * (t - 1)
    dx = np.polyfit(frames_idx[valid], cx[valid], 1)[0] * (t - 1)
    dy = np.polyfit(frames_idx[valid], cy[valid], 1)[0] * (t - 1)
    vy = np.diff(cy[valid])
    return {
        "log_area_change": float(fit),
        "dx": float(dx),
        "dy": float(dy),
        "y_path": float(np.abs(vy).sum()),
        "y_up": float(-vy[vy < 0].sum()),
        "y_down": float(vy[vy > 0].sum()),
        "empty": 0.0,
    }


def classify_motion(video, threshold: float = 0.25) -> str:
    """The motion class name a video shows (see the module docstring), or "other": each of the
    world's motions carries its own rule (`WorldMotion.seen`), tried in its check order."""
    f = motion_features(video, threshold)
    return "other" if f["empty"] else check_motion(f)


def motion_accuracy(videos, class_names: list[str], labels) -> dict:
    """Share of videos whose checked motion is the asked one, overall and per class."""
    predicted = [classify_motion(v) for v in videos]
    asked = [class_names[int(label)] for label in labels]
    per_class: dict[str, list[bool]] = {}
    for p, a in zip(predicted, asked):
        per_class.setdefault(a, []).append(p == a)
    return {
        "accuracy": float(np.mean([p == a for p, a in zip(predicted, asked)])),
        "num_videos": len(asked),
        "by_class": {k: float(np.mean(v)) for k, v in per_class.items()},
        "predicted": predicted,
    }


# -- colours ---------------------------------------------------------------------------------


def _nearest_color(rgb: np.ndarray) -> str:

    names = list(COLORS)
    palette = np.asarray([COLORS[n] for n in names], dtype=np.float64) / 255.0
    return names[int(np.argmin(np.linalg.norm(palette - rgb, axis=1)))]


def color_check(video, threshold: float = 0.25) -> dict[str, str]:
    """The named colours a video shows: ``background`` (median of the frame borders) and
    ``foreground`` (median colour of the pixels farther than ``threshold`` from it, over all
    frames), each the nearest of the moving-shapes palette. Meant for single-shape videos."""
    frames = _to_unit(video)  # (T, H, W, 3)
    background, mask = _foreground(frames, threshold)
    out = {"background": _nearest_color(background), "foreground": "none"}
    if mask.any():
        out["foreground"] = _nearest_color(np.median(frames[mask], axis=0))
    return out


def prompt_colors(prompt: str) -> dict[str, list[str] | str | None]:
    """The shape colours and the background colour a moving-shapes style prompt names."""

    words = prompt.lower().replace(",", " ").split()
    background = None
    if "background" in words:
        i = words.index("background")
        background = words[i - 1] if i > 0 and words[i - 1] in COLORS else None
        words = words[: max(i - 1, 0)]
    return {"shapes": [w for w in words if w in COLORS], "background": background}


def color_accuracy(videos, prompts: list[str]) -> dict:
    """Share of videos whose background colour, and (single-shape prompts) shape colour, is
    the named one."""
    background, foreground = [], []
    for video, prompt in zip(videos, prompts):
        asked, seen = prompt_colors(prompt), color_check(video)
        if asked["background"]:
            background.append(seen["background"] == asked["background"])
        if len(asked["shapes"]) == 1:
            foreground.append(seen["foreground"] == asked["shapes"][0])
    return {
        "background_accuracy": float(np.mean(background)) if background else None,
        "num_background": len(background),
        "shape_color_accuracy": float(np.mean(foreground)) if foreground else None,
        "num_single_shape": len(foreground),
    }


# -- shape kind ------------------------------------------------------------------------------

# Orientations tried per kind: a square repeats every 90 degrees, a triangle every 120.
_ANGLES = {
    "circle": np.zeros(1),
    "square": np.linspace(0, math.pi / 2, 12, endpoint=False),
    "triangle": np.linspace(0, 2 * math.pi / 3, 16, endpoint=False),
}


def shape_scores(video, threshold: float = 0.25) -> dict[str, float]:
    """How well each ideal shape fits the one shape of a video: mean over frames of the best
    intersection-over-union between the foreground (as in `color_check`) and that shape drawn
    with the foreground's area at its centroid, over orientations. Empty if no frame has a
    foreground of at least 6 pixels."""
    _, mask = _foreground(_to_unit(video), threshold)  # (T, H, W)
    return _fit_kinds(mask)


def _fit_kinds(mask: np.ndarray) -> dict[str, float]:
    """Best IoU of each ideal shape with a (T, H, W) mask (`shape_scores`)."""

    _, h, w = mask.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    scores: dict[str, list[float]] = {kind: [] for kind in SHAPES}
    for frame_mask in mask:
        area = int(frame_mask.sum())
        if area < 6:
            continue
        dx, dy = xs - xs[frame_mask].mean(), ys - ys[frame_mask].mean()
        radius = math.sqrt(area / math.pi)  # of the equal-area circle
        for kind in SHAPES:
            angles = _ANGLES[kind][:, None, None]
            template = _signed_distance(kind, dx[None], dy[None], radius, angles) <= 0
            inter = (template & frame_mask).sum(axis=(1, 2))
            union = (template | frame_mask).sum(axis=(1, 2))
            scores[kind].append(float((inter / union).max()))
    return {kind: float(np.mean(v)) for kind, v in scores.items() if v}


def shape_check(video, threshold: float = 0.25) -> str:
    """The kind of the one shape in a video: "circle", "square", "triangle" (or "none"): the
    ideal shape that fits its foreground best (`shape_scores`), which is invariant to
    position, size and rotation and, being an area overlap, robust to the one-pixel edge
    errors a decoder makes on shapes a few pixels across. Meant for single-shape videos."""
    scores = shape_scores(video, threshold)
    return max(scores, key=scores.get) if scores else "none"


def shape_check_by_color(video, color: str, threshold: float = 0.25) -> str:
    """The kind of the shape of a named colour in a video of several shapes (two-shape
    prompts name a colour per shape): the ideal shape that fits best (`shape_scores`) the
    pixels within ``threshold`` of that palette colour; "none" if it covers < 6 pixels."""

    frames = _to_unit(video)  # (T, H, W, 3)
    target = np.asarray(COLORS[color], dtype=np.float64) / 255.0
    scores = _fit_kinds(np.linalg.norm(frames - target, axis=-1) < threshold)
    return max(scores, key=scores.get) if scores else "none"

"""Hand-written checks for moving-shapes videos (no learned weights): which of the ten motion
classes does a video show, and which colours (``color_check``: background and, for one shape,
the shape's colour — the nearest palette colour to the median border / foreground pixel)?

How: the background colour is the median of the frame borders; foreground = pixels farther than
``threshold`` from it (RGB distance in [0, 1] units). Per frame we take the foreground area and
centroid, then decide in this order:

1. grow / shrink — the foreground area changes by a factor > e^0.4 (least-squares slope of
   log-area over the clip);
2. bounce — the vertical centroid path goes both up and down by > 5 % of the frame and is at
   least 1.6× longer than its net displacement;
3. a translation — the net centroid displacement (linear fit) is > 15 % of the frame: the
   nearest of the eight compass directions (up-right and down-left are not classes: "other");
4. rotate — otherwise (the shapes stay in place; rotation or orbiting changes the pixels).

Measured on real videos it is right on most of them (``tests/test_motion_check.py`` checks
>= 85 % on held-out videos; the README quotes the figure). It is a rough check for the generation
issue; the trained classifier of the evaluation issue replaces it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

DIRECTIONS = {  # angle of (dx, -dy) in degrees -> class
    0: "right", 45: "other", 90: "up", 135: "up-left", 180: "left", 225: "other",
    270: "down", 315: "down-right",
}  # fmt: skip


def _to_unit(video: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, T, H, W) in [-1, 1] (torch, the dataset's layout) -> (T, H, W, 3) in [0, 1]."""
    if torch.is_tensor(video):
        video = video.detach().float().cpu().numpy()
    return ((np.asarray(video).transpose(1, 2, 3, 0) + 1) / 2).clip(0, 1)


def _foreground(frames: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Background RGB (the median of the frame borders) and foreground mask (T, H, W): pixels
    farther than ``threshold`` from it, of frames (T, H, W, 3) in [0, 1] (`_to_unit`)."""
    border = np.concatenate(
        [frames[:, 0].reshape(-1, 3), frames[:, -1].reshape(-1, 3),
         frames[:, :, 0].reshape(-1, 3), frames[:, :, -1].reshape(-1, 3)]
    )  # fmt: skip
    background = np.median(border, axis=0)
    return background, np.linalg.norm(frames - background, axis=-1) > threshold


def motion_features(video, threshold: float = 0.25) -> dict[str, float]:
    """Foreground statistics of one video (3, T, H, W) in [-1, 1]."""
    _, mask = _foreground(_to_unit(video), threshold)  # (T, H, W)
    t, h, w = mask.shape
    area = mask.reshape(t, -1).sum(1).astype(np.float64)
    ys, xs = np.mgrid[0:h, 0:w]
    safe = np.maximum(area, 1)
    cx = (mask * xs).reshape(t, -1).sum(1) / safe / w
    cy = (mask * ys).reshape(t, -1).sum(1) / safe / h
    frames_idx = np.arange(t)
    valid = area > 0
    if valid.sum() < 2:
        return {"log_area_change": 0.0, "dx": 0.0, "dy": 0.0, "y_path": 0.0, "y_up": 0.0,
                "y_down": 0.0, "empty": 1.0}  # fmt: skip
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
    """The motion class name a video shows (see the module docstring), or "other"."""
    f = motion_features(video, threshold)
    if f["empty"]:
        return "other"
    if f["log_area_change"] > 0.4:
        return "grow"
    if f["log_area_change"] < -0.4:
        return "shrink"
    if (
        min(f["y_up"], f["y_down"]) > 0.05
        and f["y_path"] > 1.6 * abs(f["dy"])
        and abs(f["dx"]) < 0.1
    ):
        return "bounce"
    if math.hypot(f["dx"], f["dy"]) > 0.15:
        angle = math.degrees(math.atan2(-f["dy"], f["dx"])) % 360
        return DIRECTIONS[int(round(angle / 45) % 8) * 45]
    return "rotate"


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
    from ..data.moving_shapes import COLORS

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
    from ..data.moving_shapes import COLORS

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

# area / (pi r_max^2) of the ideal shapes, r_max = farthest point from the centroid: a circle
# fills its circumcircle, a square 2/pi of it, an equilateral triangle 3 sqrt(3) / (4 pi).
_COMPACTNESS = {"circle": 1.0, "square": 2 / math.pi, "triangle": 3 * math.sqrt(3) / (4 * math.pi)}


def shape_check(video, threshold: float = 0.25) -> str:
    """The kind of the one shape in a video: "circle", "square", "triangle" (or "none").

    Per frame, the foreground (as in `color_check`) is measured by its compactness, area over
    the area of the circle through its farthest pixel from the centroid — invariant to
    position, size and rotation; the median over frames picks the nearest ideal value. Meant
    for single-shape videos.
    """
    _, mask = _foreground(_to_unit(video), threshold)  # (T, H, W)
    values = []
    for frame_mask in mask:
        ys, xs = np.nonzero(frame_mask)
        if len(xs) < 4:
            continue
        radius = np.hypot(xs - xs.mean(), ys - ys.mean()).max() + 0.5  # to the pixel's edge
        values.append(len(xs) / (math.pi * radius**2))
    if not values:
        return "none"
    compactness = float(np.median(values))
    return min(_COMPACTNESS, key=lambda kind: abs(math.log(compactness / _COMPACTNESS[kind])))

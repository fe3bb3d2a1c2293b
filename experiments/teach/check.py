"""Checks for the taught concepts, written for this experiment (no learned weights).

- shape kind among the world's three and the new ones: the ideal outline (this renderer's own
  masks) that best overlaps the foreground of each frame, at the foreground's area and centroid
  (intersection over union, over orientations), as the project's `shape_check` does for three;
- motion: the new ones from the centre track (zigzagging: a sideways drift while the height goes
  down, up, down and up again; shaking: left and right on the spot), the known ones by the
  project's `classify_motion`;
- colours: the project's `color_check`.

Each is tried on clips rendered by `clips.py` (decoded through the base's autoencoder too) by
`python experiments/teach/check.py`, which prints how often the checks are right there, and
per kind how often decode(encode(clip)) is still read as its kind.
"""

from __future__ import annotations

import math

import numpy as np

from cmdvideo.evaluation.motion_check import _foreground, _to_unit, classify_motion

KINDS = ("circle", "square", "triangle", "bar", "semicircle", "ring", "cross", "star")
_TURNS = {
    "circle": [0.0],
    "ring": [0.0],
    "square": list(np.linspace(0, math.pi / 2, 6, endpoint=False)),
    "cross": list(np.linspace(0, math.pi / 2, 6, endpoint=False)),
    "triangle": list(np.linspace(0, 2 * math.pi / 3, 8, endpoint=False)),
    "star": list(np.linspace(0, 2 * math.pi / 5, 6, endpoint=False)),
    "bar": list(np.linspace(-math.pi / 6, math.pi / 6, 5)),  # wide, not tall: not turned far
    "semicircle": list(np.linspace(-math.pi / 6, math.pi / 6, 5)),
}


def _templates(kind: str, h: int, w: int, cx: float, cy: float, area: int) -> list[np.ndarray]:
    """The kind's masks centred at (cx, cy) pixels with about ``area`` pixels, per turn."""
    from clips import shape_mask

    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for turn in _TURNS[kind]:
        dx, dy = xs - cx, ys - cy
        rx = math.cos(turn) * dx + math.sin(turn) * dy
        ry = -math.sin(turn) * dx + math.cos(turn) * dy
        # the outer radius whose mask has the foreground's area (the mask's area is quadratic)
        unit = shape_mask(kind, rx / 10.0, ry / 10.0, 1.0).sum()  # at radius 10 pixels
        radius = 10.0 * math.sqrt(area / max(unit, 1))
        out.append(shape_mask(kind, rx / radius, ry / radius, 1.0))
    return out


def kind_scores(video, threshold: float = 0.25, kinds=KINDS) -> dict[str, float]:
    """Mean best IoU of each kind with the foreground, over the frames with a foreground."""
    _, mask = _foreground(_to_unit(video), threshold)  # (T, H, W)
    _, h, w = mask.shape
    ys, xs = np.mgrid[0:h, 0:w]
    scores: dict[str, list[float]] = {k: [] for k in kinds}
    for frame in mask[::2]:
        area = int(frame.sum())
        if area < 6:
            continue
        cx, cy = xs[frame].mean(), ys[frame].mean()
        for kind in kinds:
            best = 0.0
            for template in _templates(kind, h, w, cx, cy, area):
                union = (template | frame).sum()
                best = max(best, (template & frame).sum() / max(union, 1))
            scores[kind].append(best)
    return {k: float(np.mean(v)) for k, v in scores.items() if v}


def kind_check(video, kinds=KINDS) -> str:
    scores = kind_scores(video, kinds=kinds)
    return max(scores, key=scores.get) if scores else "none"


def track(video, threshold: float = 0.25) -> np.ndarray:
    """(T, 2) foreground centroid (x, y) per frame, fractions of the frame (NaN if empty)."""
    _, mask = _foreground(_to_unit(video), threshold)
    t, h, w = mask.shape
    ys, xs = np.mgrid[0:h, 0:w]
    out = np.full((t, 2), np.nan)
    for i, m in enumerate(mask):
        if m.sum() >= 4:
            out[i] = xs[m].mean() / w, ys[m].mean() / h
    return out


def _reversals(values: np.ndarray, least: float) -> int:
    """Direction changes of a path, counting only moves of at least ``least`` between them."""
    turns, direction, anchor = 0, 0, values[0]
    for v in values[1:]:
        step = v - anchor
        if abs(step) < least:
            continue
        new = 1 if step > 0 else -1
        if direction and new != direction:
            turns += 1
        direction, anchor = new, v
    return turns


def motion_check(video) -> str:
    """ "zigzagging", "shaking", or the project's class name for the known motions."""
    xy = track(video)
    ok = ~np.isnan(xy[:, 0])
    if ok.sum() >= 8:
        x, y = xy[ok, 0], xy[ok, 1]
        dx = x[-1] - x[0]
        y_turns, x_turns = _reversals(y, 0.04), _reversals(x, 0.03)
        if y_turns >= 2 and abs(dx) > 0.12 and np.ptp(y) > 0.1:
            return "zigzagging"
        if x_turns >= 3 and abs(dx) < 0.1 and np.ptp(x) > 0.06 and np.ptp(y) < 0.08:
            return "shaking"
    return classify_motion(video)


def main() -> None:
    """How often the checks are right on rendered clips, and through the base's autoencoder."""
    import torch
    from clips import KNOWN_MOTIONS, NEW_MOTIONS, render

    from cmdvideo import CMDPipeline

    torch.set_num_threads(1)
    pipe = CMDPipeline.from_pretrained("moving-shapes-tiny")
    rng = np.random.default_rng(3)
    motions = (*NEW_MOTIONS, "down", "shrink", "left")
    right = {"kind": [0, 0, 0, 0], "motion": [0, 0, 0, 0]}  # rendered ok, n, coded ok, n
    coded_kinds = {kind: [0, 0] for kind in KINDS}  # read back as itself through the codec
    for kind in KINDS:
        for motion in motions:
            for _ in range(2):
                clip = render(kind, "red", "white", motion, rng)
                with torch.no_grad():
                    content, latent = pipe.encode_video(clip)
                    coded = pipe.codec.decode(content, latent).clamp(-1, 1)[0]
                shown = torch.nn.functional.interpolate(
                    torch.from_numpy(clip).permute(0, 3, 1, 2).float(),
                    size=(32, 32),
                    mode="bilinear",
                    antialias=True,
                )
                shown = (shown / 127.5 - 1).permute(1, 0, 2, 3)
                asked = KNOWN_MOTIONS.get(motion, motion)
                coded_kinds[kind][0] += kind_check(coded) == kind
                coded_kinds[kind][1] += 1
                for video, k in ((shown, 0), (coded, 2)):
                    right["kind"][k] += kind_check(video) == kind
                    right["kind"][k + 1] += 1
                    seen = motion_check(video)
                    right["motion"][k] += seen == motion or asked.endswith(seen)
                    right["motion"][k + 1] += 1
    for what, (a, n, b, m) in right.items():
        print(f"{what}: rendered {a}/{n}, through the autoencoder {b}/{m}")
    for kind, (ok, n) in coded_kinds.items():
        print(f"  {kind} through the autoencoder, read back as itself: {ok}/{n}")


if __name__ == "__main__":
    main()

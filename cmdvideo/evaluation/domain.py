"""Offline metrics for the embedded moving-shapes dataset (docs/design.md, "Measuring"), read by the
project's own classifier (:mod:`cmdvideo.models.classifier`) and hand-written checks.

- ``domain_accuracy``: how often generated videos show what was asked — the motion class of a
  class label (the classifier), and for a prompt also its background colour and (one-shape
  prompts) the shape's colour and kind (hand-written checks, exact on real videos).
- ``fd_moving_shapes``: Fréchet distance between two video sets in the classifier's 128-d
  penultimate features. It is a domain metric, not FVD: always report it beside the
  real-vs-real value at the same sample count (``real_vs_real_fd``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.moving_shapes import COLORS, MOTIONS, SHAPES, parse_caption
from ..models.classifier import (
    COLOR_NAMES,
    VIDEO_SIZE,
    MovingShapesClassifier,
    factor_targets,
)
from .frechet import FeatureStats, frechet_distance_from_stats
from .motion_check import color_check, shape_check, shape_check_by_color


def at_classifier_size(videos: torch.Tensor, size: int = VIDEO_SIZE) -> torch.Tensor:
    """(N, 3, T, H, W) videos resized (area averaging, per frame) to ``size``×``size``, the size
    the classifier and the hand-written checks were made for; unchanged when already there."""
    n, c, t, h, w = videos.shape
    if (h, w) == (size, size):
        return videos
    frames = videos.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w).float()
    frames = torch.nn.functional.interpolate(frames, size=(size, size), mode="area")
    return frames.view(n, t, c, size, size).permute(0, 2, 1, 3, 4)


def _batches(videos, batch_size: int):
    for start in range(0, len(videos), batch_size):
        chunk = videos[start : start + batch_size]
        yield chunk if torch.is_tensor(chunk) else torch.stack(list(chunk))


@torch.no_grad()
def classify(model: MovingShapesClassifier, videos, batch_size: int = 64) -> dict:
    """Predictions for (N, 3, T, H, W) videos in [-1, 1] (a tensor or a sequence of them).

    Returns:
        {"motion": [name], "background": [color], "shape_colors": [set of colors],
        "shape_kinds": [set of kinds], "features": (N, feature_dim) float tensor}.
    """
    device = next(model.parameters()).device
    out = {"motion": [], "background": [], "shape_colors": [], "shape_kinds": [], "features": []}
    for batch in _batches(videos, batch_size):
        batch = batch.to(device, torch.float32)
        features = model.features(batch)
        logits = {name: head(features) for name, head in model.heads.items()}
        out["features"].append(features.cpu())
        out["motion"] += [MOTIONS[i] for i in logits["motion"].argmax(-1).tolist()]
        out["background"] += [COLOR_NAMES[i] for i in logits["background"].argmax(-1).tolist()]
        for row in (logits["shape_colors"] > 0).tolist():
            out["shape_colors"].append({c for c, on in zip(COLOR_NAMES, row) if on})
        for row in (logits["shape_kinds"] > 0).tolist():
            out["shape_kinds"].append({k for k, on in zip(SHAPES, row) if on})
    out["features"] = torch.cat(out["features"])
    return out


def _rate(hits: list[bool]) -> float | None:
    return float(np.mean(hits)) if hits else None


def appearance_checks(videos, prompts: list[str] | None = None) -> list[dict]:
    """Hand-written appearance checks per video (evaluation/motion_check.py; 100 % right on
    1,000 held-out real videos): {"background", "foreground" (the shape colour), "kind"}, each
    meant for one-shape videos except the background; with ``prompts``, for prompts naming
    several shapes also "kinds": {colour: kind} of the pixels of each named colour."""
    out = []
    for i, video in enumerate(videos):
        seen = {**color_check(video), "kind": shape_check(video)}
        named = parse_caption(prompts[i])["shapes"] if prompts is not None else []
        if len(named) > 1:
            seen["kinds"] = {c: shape_check_by_color(video, c) for c, _ in named if c in COLORS}
        out.append(seen)
    return out


def domain_accuracy(
    model: MovingShapesClassifier | None,
    videos,
    prompts: list[str] | None = None,
    class_names: list[str] | None = None,
    labels=None,
    predictions: dict | None = None,
    appearance: list[dict] | None = None,
) -> dict:
    """How often videos show what was asked.

    The motion class is judged by the classifier; the prompt's colours and shape kind by the
    hand-written `appearance_checks` (exact on real videos, where the classifier's shape heads
    are not: see the README). Give ``prompts`` (moving-shapes style captions) or ``labels``
    (motion class ids, with ``class_names`` when the ids are not `MOTIONS` order);
    ``predictions`` (from `classify`) and ``appearance`` skip recomputing them.

    Returns:
        {"motion_accuracy", "by_class": {motion: accuracy}, "num_videos"}, and for prompts
        also "background_accuracy", "shape_color_accuracy" and "shape_kind_accuracy" (the last
        two over one-shape prompts), "num_single_shape", "all_accuracy" (motion,
        background, shape colour and kind all right, over one-shape prompts), and
        "multi_shape_kind_accuracy" (each shape of prompts naming several, judged on the
        pixels of its colour) over "num_multi_shape" videos.
    """
    if (prompts is None) == (labels is None):
        raise ValueError("give either prompts or labels")
    pred = predictions if predictions is not None else classify(model, videos)
    n = len(pred["motion"])
    asked = _asked(n, prompts, labels, class_names)
    motion_hits = [pred["motion"][i] == a["motion"] for i, a in enumerate(asked)]
    by_class = {
        m: _rate([h for h, a in zip(motion_hits, asked) if a["motion"] == m])
        for m in MOTIONS
        if any(a["motion"] == m for a in asked)
    }
    result = {"motion_accuracy": _rate(motion_hits), "by_class": by_class, "num_videos": n}
    if prompts is not None:
        seen = appearance if appearance is not None else appearance_checks(videos, prompts)
        result.update(_appearance_accuracy(asked, seen, motion_hits))
    return result


def _asked(n: int, prompts, labels, class_names) -> list[dict]:
    """What each of ``n`` videos was asked for, {"motion", "background", "shapes"}, from its
    prompt or its class label."""
    if prompts is not None:
        if len(prompts) != n:
            raise ValueError(f"{len(prompts)} prompts for {n} videos")
        asked = [parse_caption(p) for p in prompts]
    else:
        names = list(class_names) if class_names is not None else list(MOTIONS)
        labels = [int(x) for x in labels]
        if len(labels) != n:
            raise ValueError(f"{len(labels)} labels for {n} videos")
        asked = [{"motion": names[i], "background": None, "shapes": []} for i in labels]
    unknown = sorted({a["motion"] for a in asked if a["motion"] not in MOTIONS})
    if unknown:
        raise ValueError(f"motions {unknown} are not moving-shapes classes {list(MOTIONS)}")
    return asked


def _appearance_accuracy(asked: list[dict], seen: list[dict], motion_hits: list[bool]) -> dict:
    """The prompt's look against what the checks saw: background, one shape's colour and kind,
    everything at once, and each shape of prompts naming several."""
    background = [
        seen[i]["background"] == a["background"] for i, a in enumerate(asked) if a["background"]
    ]
    single = [i for i, a in enumerate(asked) if len(a["shapes"]) == 1]
    color = {i: seen[i]["foreground"] == asked[i]["shapes"][0][0] for i in single}
    kind = {i: seen[i]["kind"] == asked[i]["shapes"][0][1] for i in single}
    everything = [
        motion_hits[i] and seen[i]["background"] == asked[i]["background"] and color[i] and kind[i]
        for i in single
    ]
    # several shapes: each named (colour, kind) judged on the pixels of that colour
    several = [i for i, a in enumerate(asked) if len(a["shapes"]) > 1 and "kinds" in seen[i]]
    several_kinds = [
        seen[i]["kinds"].get(c) == k
        for i in several
        for c, k in asked[i]["shapes"]
        if c in COLORS and k
    ]
    return dict(
        background_accuracy=_rate(background),
        shape_color_accuracy=_rate(list(color.values())),
        shape_kind_accuracy=_rate(list(kind.values())),
        num_single_shape=len(single),
        all_accuracy=_rate(everything),
        multi_shape_kind_accuracy=_rate(several_kinds),
        num_multi_shape=len(several),
    )


def head_accuracy(model: MovingShapesClassifier, videos, factors: list) -> dict[str, float]:
    """Accuracy of each classifier head against known factors (real videos): motion,
    background, and the exact set of shape colours / kinds."""
    pred, targets = classify(model, videos), factor_targets(factors)
    color_sets = [
        {COLOR_NAMES[j] for j in row.nonzero().flatten().tolist()}
        for row in targets["shape_colors"]
    ]
    kind_sets = [
        {SHAPES[j] for j in row.nonzero().flatten().tolist()} for row in targets["shape_kinds"]
    ]
    return {
        "motion": _rate([p == MOTIONS[int(t)] for p, t in zip(pred["motion"], targets["motion"])]),
        "background": _rate(
            [p == COLOR_NAMES[int(t)] for p, t in zip(pred["background"], targets["background"])]
        ),
        "shape_colors": _rate([p == t for p, t in zip(pred["shape_colors"], color_sets)]),
        "shape_kinds": _rate([p == t for p, t in zip(pred["shape_kinds"], kind_sets)]),
    }


def feature_stats(model: MovingShapesClassifier, videos, batch_size: int = 64) -> FeatureStats:
    """Streamed statistics of the classifier's penultimate features (for fd_moving_shapes)."""
    stats = FeatureStats(model.config.feature_dim)
    device = next(model.parameters()).device
    with torch.no_grad():
        for batch in _batches(videos, batch_size):
            stats.update(model.features(batch.to(device, torch.float32)))
    return stats


def fd_moving_shapes(model: MovingShapesClassifier, videos_a, videos_b) -> float:
    """Fréchet distance between two video sets in the classifier's features (not FVD)."""
    return frechet_distance_from_stats(
        feature_stats(model, videos_a), feature_stats(model, videos_b)
    )

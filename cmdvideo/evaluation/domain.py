"""Offline metrics for the embedded moving-shapes dataset (DESIGN.md §7): a small video
classifier trained by this project on real moving-shapes videos, and what it measures.

- ``MovingShapesClassifier``: a 3-D CNN with four heads — motion class (10-way), background
  colour (10-way), which colours the shapes have and which kinds they are (multi-label). Its
  weights ship in the package (`SHIPPED_CLASSIFIER`); `scripts/train_classifier.sh` retrains
  them with ``cmdvideo train classifier``.
- ``domain_accuracy``: how often generated videos show what was asked — the motion class of a
  class label (the classifier), and for a prompt also its background colour and (one-shape
  prompts) the shape's colour and kind (hand-written checks, exact on real videos).
- ``fd_moving_shapes``: Fréchet distance between two video sets in the classifier's 128-d
  penultimate features. It is a domain metric, not FVD: always report it beside the
  real-vs-real value at the same sample count (``real_vs_real_fd``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..data.moving_shapes import COLORS, MOTIONS, SHAPES, VideoFactors, parse_caption
from .frechet import FeatureStats, frechet_distance_from_stats
from .motion_check import color_check, shape_check

SHIPPED_CLASSIFIER = Path(__file__).resolve().parent.parent / "assets" / "moving-shapes-classifier"
HEADS = ("motion", "background", "shape_colors", "shape_kinds")
_COLOR_NAMES, _NUM_COLORS = list(COLORS), len(COLORS)


class MovingShapesClassifier(ModelMixin, ConfigMixin):
    """3-D CNN over (B, 3, T, H, W) videos in [-1, 1].

    Four stride-2 Conv3d stages (BatchNorm, SiLU) halve time and space, then global average
    pooling gives the ``feature_dim`` features (`features`) that fd_moving_shapes uses.
    BatchNorm rather than GroupNorm: per-sample normalisation would remove exactly the
    per-channel offsets that carry the background colour.
    """

    @register_to_config
    def __init__(
        self,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        feature_dim: int = 128,
        stem_stride: int = 2,
        pooling: str = "mean",
    ):
        super().__init__()
        if pooling not in ("mean", "mean+max"):
            raise ValueError(f"pooling must be 'mean' or 'mean+max', got {pooling!r}")
        layers, channels = [], 3
        for i, width in enumerate(widths):
            # the first stage keeps every frame (motion lives in small frame-to-frame changes)
            # and, with stem_stride 1, every pixel (a 4-pixel triangle needs its corners)
            stride = (1, stem_stride, stem_stride) if i == 0 else (2, 2, 2)
            layers += [
                nn.Conv3d(channels, width, 3, stride=stride, padding=1),
                nn.BatchNorm3d(width),
                nn.SiLU(),
            ]
            channels = width
        self.backbone = nn.Sequential(*layers)
        pooled = channels * (2 if pooling == "mean+max" else 1)
        self.project = nn.Sequential(nn.Linear(pooled, feature_dim), nn.SiLU())
        self.heads = nn.ModuleDict(
            {
                "motion": nn.Linear(feature_dim, len(MOTIONS)),
                "background": nn.Linear(feature_dim, _NUM_COLORS),
                "shape_colors": nn.Linear(feature_dim, _NUM_COLORS),
                "shape_kinds": nn.Linear(feature_dim, len(SHAPES)),
            }
        )

    def features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> (B, feature_dim) penultimate features."""
        x = self.backbone(video)  # (B, C, T', H', W')
        pooled = x.mean(dim=(2, 3, 4))  # (B, C)
        if self.config.pooling == "mean+max":  # max: is a small shape anywhere?
            pooled = torch.cat([pooled, x.amax(dim=(2, 3, 4))], dim=1)  # (B, 2C)
        return self.project(pooled)  # (B, feature_dim)

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per head: motion (B, 10), background (B, 10), shape_colors (B, 10) and
        shape_kinds (B, 3) (the last two multi-label: sigmoid)."""
        h = self.features(video)
        return {name: head(h) for name, head in self.heads.items()}


def factor_targets(factors: list[dict | VideoFactors]) -> dict[str, torch.Tensor]:
    """Training targets from moving-shapes factors (dicts as in dataset items, or objects)."""
    motion, background = [], []
    colors = torch.zeros(len(factors), _NUM_COLORS)
    kinds = torch.zeros(len(factors), len(SHAPES))
    for i, f in enumerate(factors):
        f = VideoFactors.from_dict(f) if isinstance(f, dict) else f
        motion.append(f.label)
        background.append(_COLOR_NAMES.index(f.appearance.background))
        for shape in f.appearance.shapes:
            colors[i, _COLOR_NAMES.index(shape.color)] = 1
            kinds[i, SHAPES.index(shape.kind)] = 1
    return {
        "motion": torch.tensor(motion),
        "background": torch.tensor(background),
        "shape_colors": colors,
        "shape_kinds": kinds,
    }


def classifier_loss(logits: dict, targets: dict) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum of the four heads' losses (cross-entropy; binary cross-entropy for multi-label)."""
    parts = {
        "motion": F.cross_entropy(logits["motion"], targets["motion"]),
        "background": F.cross_entropy(logits["background"], targets["background"]),
        "shape_colors": F.binary_cross_entropy_with_logits(
            logits["shape_colors"], targets["shape_colors"]
        ),
        "shape_kinds": F.binary_cross_entropy_with_logits(
            logits["shape_kinds"], targets["shape_kinds"]
        ),
    }
    return sum(parts.values()), {f"loss_{k}": v.item() for k, v in parts.items()}


def load_classifier(path: str | Path | None = None) -> MovingShapesClassifier:
    """The classifier shipped in the package (default), or one from `cmdvideo train classifier`
    (its run folder or the ``classifier`` folder inside it)."""
    path = Path(path) if path is not None else SHIPPED_CLASSIFIER
    if (path / "classifier").is_dir():
        path = path / "classifier"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"no classifier at {path}: give a folder written by `cmdvideo train classifier`"
        )
    return MovingShapesClassifier.from_pretrained(path).eval()


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
        out["background"] += [_COLOR_NAMES[i] for i in logits["background"].argmax(-1).tolist()]
        for row in (logits["shape_colors"] > 0).tolist():
            out["shape_colors"].append({c for c, on in zip(_COLOR_NAMES, row) if on})
        for row in (logits["shape_kinds"] > 0).tolist():
            out["shape_kinds"].append({k for k, on in zip(SHAPES, row) if on})
    out["features"] = torch.cat(out["features"])
    return out


def _rate(hits: list[bool]) -> float | None:
    return float(np.mean(hits)) if hits else None


def appearance_checks(videos) -> list[dict[str, str]]:
    """Hand-written appearance checks per video (evaluation/motion_check.py; 100 % right on
    1,000 held-out real videos): {"background", "foreground" (the shape colour), "kind"}, each
    meant for one-shape videos except the background."""
    out = []
    for video in videos:
        colors = color_check(video)
        out.append({**colors, "kind": shape_check(video)})
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
        two over one-shape prompts), "num_single_shape", and "all_accuracy" (motion,
        background, shape colour and kind all right, over one-shape prompts).
    """
    if (prompts is None) == (labels is None):
        raise ValueError("give either prompts or labels")
    pred = predictions if predictions is not None else classify(model, videos)
    n = len(pred["motion"])
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
    motion_hits = [pred["motion"][i] == a["motion"] for i, a in enumerate(asked)]
    by_class = {
        m: _rate([h for h, a in zip(motion_hits, asked) if a["motion"] == m])
        for m in MOTIONS
        if any(a["motion"] == m for a in asked)
    }
    result = {"motion_accuracy": _rate(motion_hits), "by_class": by_class, "num_videos": n}
    if prompts is None:
        return result
    seen = appearance if appearance is not None else appearance_checks(videos)
    background = [seen[i]["background"] == a["background"] for i, a in enumerate(asked)
                  if a["background"]]  # fmt: skip
    single = [i for i, a in enumerate(asked) if len(a["shapes"]) == 1]
    color = {i: seen[i]["foreground"] == asked[i]["shapes"][0][0] for i in single}
    kind = {i: seen[i]["kind"] == asked[i]["shapes"][0][1] for i in single}
    everything = [
        motion_hits[i] and seen[i]["background"] == asked[i]["background"] and color[i] and kind[i]
        for i in single
    ]
    result.update(
        background_accuracy=_rate(background),
        shape_color_accuracy=_rate(list(color.values())),
        shape_kind_accuracy=_rate(list(kind.values())),
        num_single_shape=len(single),
        all_accuracy=_rate(everything),
    )
    return result


def head_accuracy(model: MovingShapesClassifier, videos, factors: list) -> dict[str, float]:
    """Accuracy of each classifier head against known factors (real videos): motion,
    background, and the exact set of shape colours / kinds."""
    pred, targets = classify(model, videos), factor_targets(factors)
    color_sets = [{_COLOR_NAMES[j] for j in row.nonzero().flatten().tolist()}
                  for row in targets["shape_colors"]]  # fmt: skip
    kind_sets = [{SHAPES[j] for j in row.nonzero().flatten().tolist()}
                 for row in targets["shape_kinds"]]  # fmt: skip
    return {
        "motion": _rate([p == MOTIONS[int(t)] for p, t in zip(pred["motion"], targets["motion"])]),
        "background": _rate([p == _COLOR_NAMES[int(t)]
                             for p, t in zip(pred["background"], targets["background"])]),
        "shape_colors": _rate([p == t for p, t in zip(pred["shape_colors"], color_sets)]),
        "shape_kinds": _rate([p == t for p, t in zip(pred["shape_kinds"], kind_sets)]),
    }  # fmt: skip


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

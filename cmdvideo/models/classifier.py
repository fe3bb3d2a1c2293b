"""The moving-shapes video classifier behind the offline metrics (docs/design.md, "Measuring"): a small 3-D CNN
trained by this project (``cmdvideo train classifier``) on real moving-shapes videos and their
factors. Its weights ship in the package (`SHIPPED_CLASSIFIER`); what it measures lives in
:mod:`cmdvideo.evaluation.domain`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..data.moving_shapes import COLORS, MOTIONS, SHAPES, VideoFactors

SHIPPED_CLASSIFIER = Path(__file__).resolve().parent.parent / "assets" / "moving-shapes-classifier"
HEADS = ("motion", "background", "shape_colors", "shape_kinds")
VIDEO_SIZE = 32  # the shipped classifier saw 16 frames of 32x32: larger videos are resized
COLOR_NAMES, NUM_COLORS = list(COLORS), len(COLORS)


class MovingShapesClassifier(ModelMixin, ConfigMixin):
    """3-D CNN over (B, 3, T, H, W) videos in [-1, 1].

    Four stride-2 Conv3d stages (BatchNorm, SiLU) halve time and space, then global average
    pooling gives the ``feature_dim`` features (`features`) that fd_moving_shapes uses.
    BatchNorm rather than GroupNorm: per-sample normalisation would remove exactly the
    per-channel offsets that carry the background colour.

    ``world``: the moving-shapes world (`cmdvideo.data.moving_shapes.WORLDS`) it was trained
    on, recorded in its config (None: not recorded, i.e. trained before worlds existed).
    """

    @register_to_config
    def __init__(
        self,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        feature_dim: int = 128,
        stem_stride: int = 2,
        pooling: str = "mean",
        world: str | None = None,
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
                "background": nn.Linear(feature_dim, NUM_COLORS),
                "shape_colors": nn.Linear(feature_dim, NUM_COLORS),
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
    colors = torch.zeros(len(factors), NUM_COLORS)
    kinds = torch.zeros(len(factors), len(SHAPES))
    for i, f in enumerate(factors):
        f = VideoFactors.from_dict(f) if isinstance(f, dict) else f
        motion.append(f.label)
        background.append(COLOR_NAMES.index(f.appearance.background))
        for shape in f.appearance.shapes:
            colors[i, COLOR_NAMES.index(shape.color)] = 1
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

"""What a training stage is to the loop (:class:`Stage`) and what the loop prepares and calls
(:class:`TrainableModules`): the contract between :mod:`cmdvideo.training.trainer` and the stages."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import torch
from torch import nn


class TrainableModules(nn.Module):
    """What the trainer prepares (DDP wrapping, mixed-precision autocast) and calls: a stage's
    trainable modules as submodules, and ``forward(batch) -> (loss, extras)``.

    Every model call of a training step happens inside this forward, so DDP synchronises the
    gradients of every trainable module and autocast covers the frozen encoders too. Frozen
    parts (the autoencoder of the diffusion stages, a frozen text encoder, a frame VAE) stay
    with the stage: no parameters here, nothing synchronised, nothing in the checkpoints.
    """

    def __init__(self, stage: Stage, **modules: nn.Module):
        super().__init__()
        object.__setattr__(self, "stage", stage)  # not a submodule
        for name, module in modules.items():
            self.add_module(name, module)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        return self.stage.objective(self, batch)


class Stage(ABC):
    """What differs between CMD's training stages."""

    name: str = "stage"

    @abstractmethod
    def model(self) -> TrainableModules:
        """The trainable :class:`TrainableModules` (built once, after the seed is set)."""

    @abstractmethod
    def objective(
        self, modules: TrainableModules, batch: dict
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss for a batch (already on the right device) and extra numbers to log,
        computed with ``modules`` (the objective's own submodules: call them, never the
        wrapped model's)."""

    def preview(
        self, model: TrainableModules, batch: dict, out_dir: Path, step: int
    ) -> dict[str, float]:
        """Write preview files for ``batch`` (EMA weights loaded); return metrics to log."""
        return {}

    @abstractmethod
    def save_model(self, model: TrainableModules, out_dir: Path) -> list[Path]:
        """Write the final loadable model folder(s) under ``out_dir``; return their paths."""

    def after_training(self, out_dir: Path, dataset, device) -> dict | None:
        """Work on the saved model once training is over (main process only, e.g. measuring
        the autoencoder's motion scale); returns numbers to log and report."""
        return None

"""Losses shared by the training stages."""

from __future__ import annotations

import torch
import torch.nn.functional as F

RECONSTRUCTION_LOSSES = ("l1", "l2", "l1+l2")


def reconstruction_loss(
    prediction: torch.Tensor, target: torch.Tensor, kind: str = "l2"
) -> torch.Tensor:
    """Mean reconstruction error of the autoencoder (paper §3.1); ``kind`` in l1, l2, l1+l2."""
    if kind not in RECONSTRUCTION_LOSSES:
        raise ValueError(
            f"unknown reconstruction loss {kind!r}; choose one of {RECONSTRUCTION_LOSSES}"
        )
    prediction, target = prediction.float(), target.float()
    loss = prediction.new_zeros(())
    if "l1" in kind:
        loss = loss + F.l1_loss(prediction, target)
    if "l2" in kind:
        loss = loss + F.mse_loss(prediction, target)
    return loss

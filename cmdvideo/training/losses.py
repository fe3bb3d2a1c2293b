"""Losses shared by the training stages."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

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


def content_anchor_loss(content_frame: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    """MSE between content frames (B, C, H, W) and the middle of their videos (B, C, T, H, W):
    frame (T-1)/2 for an odd T, the mean of the two middle frames for an even T."""
    t = video.shape[2]
    middle = video[:, :, (t - 1) // 2 : t // 2 + 1].float().mean(dim=2)
    return F.mse_loss(content_frame.float(), middle)


class PredictionType(str, Enum):
    """What a denoiser predicts; values are diffusers' ``prediction_type`` strings."""

    EPSILON = "epsilon"
    V_PREDICTION = "v_prediction"


def check_timestep_range(
    timestep_range, num_train_timesteps: int, name: str = "timestep_range"
) -> tuple[int, int]:
    """``(lo, hi)`` with ``0 <= lo < hi <= num_train_timesteps``; None means the full range.
    ``name`` is what an error calls the setting (e.g. ``motion.timestep_range``)."""
    if timestep_range is None:
        return 0, num_train_timesteps
    if len(timestep_range) != 2:
        raise ValueError(f"{name} must be [lo, hi], got {timestep_range!r}")
    lo, hi = (int(v) for v in timestep_range)
    if not 0 <= lo < hi <= num_train_timesteps:
        raise ValueError(
            f"{name} [{lo}, {hi}) must satisfy 0 <= lo < hi <= {num_train_timesteps} "
            "(num_train_timesteps)"
        )
    return lo, hi


def diffusion_loss(
    denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    clean: torch.Tensor,
    scheduler,
    prediction_type: PredictionType | str = PredictionType.EPSILON,
    generator: torch.Generator | None = None,
    timestep_range: tuple[int, int] | None = None,
) -> torch.Tensor:
    """The usual denoising loss on a batch (noise and timesteps from the global torch RNG, so a
    resumed run draws what an uninterrupted one would; or from ``generator``, for validation
    losses that compare checkpoints on the same draws).

    Args:
        denoiser: ``(noisy, timesteps) -> prediction``, same shape as ``clean``.
        clean: (B, ...) clean samples (motion latents or content frames).
        scheduler: a diffusers noise scheduler with ``add_noise`` and ``get_velocity``
            (e.g. ``DDPMScheduler``).
        prediction_type: ε (paper) or v.
        timestep_range: ``(lo, hi)``: draw timesteps uniformly from ``lo <= t < hi`` instead of
            every training timestep, to spend a fine-tuning run on the noise levels where some
            feature of the samples is decided. Validation losses keep the full range.

    Returns:
        Scalar mean squared error against the noise (ε) or the velocity (v).
    """
    prediction_type = PredictionType(prediction_type)
    b = clean.shape[0]
    # a validation generator lives on the CPU: same draws on every device
    device = clean.device if generator is None else "cpu"
    noise = torch.randn(clean.shape, generator=generator, device=device, dtype=clean.dtype)
    lo, hi = check_timestep_range(timestep_range, scheduler.config.num_train_timesteps)
    timesteps = torch.randint(lo, hi, (b,), generator=generator, device=device)
    noise, timesteps = noise.to(clean.device), timesteps.to(clean.device)
    noisy = scheduler.add_noise(clean, noise, timesteps)
    if prediction_type is PredictionType.EPSILON:
        target = noise
    else:
        target = scheduler.get_velocity(clean, noise, timesteps)
    return F.mse_loss(denoiser(noisy, timesteps).float(), target.float())

"""One denoising loop for every CMD stage (content frame, motion latent), any diffusers scheduler."""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm


@torch.no_grad()
def denoise(
    denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    shape: tuple[int, ...],
    scheduler,
    num_inference_steps: int = 50,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
    desc: str = "denoise",
) -> torch.Tensor:
    """Start from Gaussian noise and run ``scheduler`` for ``num_inference_steps`` steps.

    Args:
        denoiser: ``(sample, timestep) -> model output`` (ε or v, matching the scheduler's
            ``prediction_type``); CFG belongs inside it (e.g. ``MotionDiT.guided``).
        shape: shape of the sample, e.g. (B, D_m, T, h+w).
        scheduler: any diffusers scheduler (DDIM by default in CMD; DPM-Solver for fewer steps).
        generator: makes the noise (and stochastic schedulers) reproducible.

    Returns:
        The denoised sample, ``shape``.
    """
    if num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
    scheduler.set_timesteps(num_inference_steps, device=device)
    sample = randn_tensor(shape, generator=generator, device=torch.device(device), dtype=dtype)
    sample = sample * scheduler.init_noise_sigma
    for t in tqdm(scheduler.timesteps, desc=desc, disable=not progress, leave=False):
        model_input = scheduler.scale_model_input(sample, t)
        output = denoiser(model_input, t.expand(shape[0]).to(device))
        sample = scheduler.step(output, t, sample, generator=generator).prev_sample
    return sample

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


def sample_content(
    unet,
    scheduler,
    batch_size: int,
    class_labels: torch.Tensor | None = None,
    text=None,
    null_text=None,
    guidance_scale: float = 1.0,
    num_inference_steps: int = 50,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    guidance_rescale: float = 0.0,
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Content frames (B, C, H, W) in the autoencoder's space from the content UNet, with CFG.

    ``text``/``null_text`` are :class:`cmdvideo.models.text.TextEmbeddings` (the prompts and the
    empty prompt) for a text-conditioned UNet. ``size``: (H, W) of the content frames, what the
    model was trained on (Stable Diffusion's UNet says 64×64 in its config, whatever the
    data's aspect); default: the UNet's ``sample_size``.
    """
    from ..models.content import content_prediction

    if size is None:
        size = unet.config.sample_size
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    guidance = dict(guidance_scale=guidance_scale, guidance_rescale=guidance_rescale)
    return denoise(
        lambda x, t: content_prediction(unet, x, t, class_labels, text, null_text, **guidance),
        (batch_size, unet.config.in_channels, h, w),
        scheduler,
        num_inference_steps,
        generator,
        device,
        dtype=unet.dtype,
        progress=progress,
        desc="content frame",
    )


def sample_motion(
    motion_model,
    scheduler,
    content_frame: torch.Tensor,
    num_frames: int,
    motion_positions: int,
    class_labels: torch.Tensor | None = None,
    text_embeds: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    num_inference_steps: int = 50,
    generator: torch.Generator | None = None,
    progress: bool = True,
    guidance_rescale: float = 0.0,
) -> torch.Tensor:
    """Motion latents (B, D_m, T, h+w) guided by ``content_frame`` (B, C, H, W), with CFG.

    Args:
        motion_positions: h + w of the autoencoder's token grid.
        text_embeds: pooled prompt embeddings (B, D) or None.
    """
    shape = (
        content_frame.shape[0],
        motion_model.config.motion_channels,
        num_frames,
        motion_positions,
    )
    guidance = dict(guidance_scale=guidance_scale, guidance_rescale=guidance_rescale)
    return denoise(
        lambda x, t: motion_model.guided(
            x, t, content_frame, class_labels, text_embeds, **guidance
        ),
        shape,
        scheduler,
        num_inference_steps,
        generator,
        content_frame.device,
        dtype=motion_model.dtype,
        progress=progress,
        desc="motion latent",
    )

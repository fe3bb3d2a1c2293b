"""One denoising loop for every CMD stage (content frame, motion latent), any diffusers scheduler."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm

from ..models.content import content_prediction


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
    init: torch.Tensor | None = None,
    strength: float = 1.0,
    known: torch.Tensor | None = None,
    known_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Start from Gaussian noise and run ``scheduler`` for ``num_inference_steps`` steps.

    Two ways to start from or keep what is already there (CMD's editing features use both):

    - ``init`` with ``strength`` in [0, 1] (SDEdit, Meng et al. 2022): ``init`` noised to the
      level of the last ``strength`` fraction of the steps, and only those steps run; 0 returns
      ``init`` unchanged, 1 is sampling from noise.
    - ``known`` with a boolean ``known_mask`` broadcastable to ``shape``: inpainting by
      replacement — before every step the masked part of the sample is set to ``known`` noised
      to that step's level, and at the end to ``known`` itself.

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
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if (known is None) != (known_mask is None):
        raise ValueError("known and known_mask go together")
    device = torch.device(device)
    scheduler.set_timesteps(num_inference_steps, device=device)
    timesteps = scheduler.timesteps
    noise = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
    if init is None:
        sample = noise * scheduler.init_noise_sigma
    else:  # SDEdit: the last `strength` of the schedule, from init noised to its first level
        skip = num_inference_steps - min(round(num_inference_steps * strength), num_inference_steps)
        start = skip * scheduler.order
        timesteps = timesteps[start:]
        if len(timesteps) == 0:
            return init.to(dtype)
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(start)
        init = init.to(device, dtype)
        sample = scheduler.add_noise(init, noise, timesteps[:1].expand(shape[0]))
    if known is not None:
        known, known_mask = known.to(device, dtype), known_mask.to(device)
        known_noise = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
    # stochastic schedulers draw from the generator; others (UniPC) do not take one
    step_kwargs = {"generator": generator} if _takes(scheduler.step, "generator") else {}
    for t in tqdm(timesteps, desc=desc, disable=not progress, leave=False):
        batch_t = t.expand(shape[0]).to(device)
        if known is not None:
            noised = scheduler.add_noise(known, known_noise, batch_t)
            sample = torch.where(known_mask, noised, sample)
        model_input = scheduler.scale_model_input(sample, t)
        output = denoiser(model_input, batch_t)
        sample = scheduler.step(output, t, sample, **step_kwargs).prev_sample
    if known is not None:
        sample = torch.where(known_mask, known, sample)
    return sample


def _takes(function, name: str) -> bool:
    return name in inspect.signature(function).parameters


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
    **existing,
) -> torch.Tensor:
    """Content frames (B, C, H, W) in the autoencoder's space from the content UNet, with CFG.

    ``text``/``null_text`` are :class:`cmdvideo.models.text.TextEmbeddings` (the prompts and the
    empty prompt) for a text-conditioned UNet. ``size``: (H, W) of the content frames, what the
    model was trained on (Stable Diffusion's UNet says 64×64 in its config, whatever the
    data's aspect); default: the UNet's ``sample_size``. ``existing``: ``init``/``strength``
    (editing an existing content frame) as in :func:`denoise`.
    """

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
        **existing,
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
    **existing,
) -> torch.Tensor:
    """Motion latents (B, D_m, T, h+w) guided by ``content_frame`` (B, C, H, W), with CFG.

    Args:
        motion_positions: h + w of the autoencoder's token grid.
        text_embeds: pooled prompt embeddings (B, D) or None.
        existing: ``init``/``strength`` (resampling a video's motion partly) or
            ``known``/``known_mask`` (keeping some frames' motion) as in :func:`denoise`.
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
        **existing,
    )

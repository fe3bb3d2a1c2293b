"""The content-frame denoiser (paper §3.2): an ordinary image diffusion model over content frames.

The point is reuse: a content frame is image-like, so any image diffusion UNet of diffusers
(``UNet2DConditionModel``, the Stable Diffusion UNet) can be loaded with ``from_pretrained``
and fine-tuned with no new parameters. Small configurations of the same class are trained from
scratch for the embedded dataset.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel

from .blocks import labels_with_null

# Small UNet2DConditionModel configurations (class-conditional; cross-attention arrives with
# the text encoder). The paper's text-to-video setting loads Stable Diffusion's UNet instead.
CONTENT_UNET_PRESETS: dict[str, dict] = {
    "tiny": dict(
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(64, 128, 128),
        layers_per_block=1,
        mid_block_type="UNetMidBlock2D",
        attention_head_dim=32,
        norm_num_groups=16,
    ),
}


def content_unet_preset(name: str) -> dict:
    """Architecture kwargs of a named preset; unknown names list the valid ones."""
    if name not in CONTENT_UNET_PRESETS:
        raise ValueError(
            f"unknown content model preset {name!r}; choose one of {sorted(CONTENT_UNET_PRESETS)}"
        )
    return dict(CONTENT_UNET_PRESETS[name])


def build_content_unet(
    preset: str,
    channels: int,
    sample_size: tuple[int, int],
    num_classes: int = 0,
    overrides: dict | None = None,
) -> UNet2DConditionModel:
    """A fresh UNet2DConditionModel for content frames of ``channels`` × ``sample_size``.

    With ``num_classes > 0`` the class table has ``num_classes + 1`` rows; the last one is the
    null class used for classifier-free guidance (see :func:`content_prediction`).
    """
    kwargs = content_unet_preset(preset)
    kwargs.update(overrides or {})
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=channels,
        out_channels=channels,
        num_class_embeds=num_classes + 1 if num_classes else None,
        cross_attention_dim=kwargs.pop("cross_attention_dim", kwargs["block_out_channels"][-1]),
        **kwargs,
    )


def num_content_classes(unet: UNet2DConditionModel) -> int:
    """Class labels the UNet was built for (the null row excluded); 0 without class table."""
    rows = unet.config.num_class_embeds
    return rows - 1 if rows else 0


def content_prediction(
    unet: UNet2DConditionModel,
    sample: torch.Tensor,
    timestep: torch.Tensor,
    class_labels: torch.Tensor | None = None,
    drop_condition: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
) -> torch.Tensor:
    """The UNet's prediction for content frames, with the null class where dropped, and
    classifier-free guidance ``uncond + s * (cond - uncond)`` when ``guidance_scale != 1``.

    Args:
        sample: (B, C, H, W) noisy content frames; timestep: (B,) or scalar.
        class_labels: (B,) long in [0, num_classes) or None (unconditional = null class).
        drop_condition: (B,) bool, rows that use the null class (condition dropout in training).

    Returns:
        (B, C, H, W).
    """
    n = num_content_classes(unet)
    b = sample.shape[0]
    timestep = timestep.expand(b) if timestep.ndim == 0 else timestep
    if n == 0:
        if class_labels is not None:
            raise ValueError("this content model has no class conditioning")
        return unet(sample, timestep, encoder_hidden_states=None).sample
    labels = labels_with_null(class_labels, n, b, sample.device, drop_condition)
    null = labels_with_null(None, n, b, sample.device)
    if guidance_scale == 1.0 or class_labels is None:
        return unet(sample, timestep, encoder_hidden_states=None, class_labels=labels).sample
    both = unet(
        torch.cat([sample, sample]),
        torch.cat([timestep, timestep]),
        encoder_hidden_states=None,
        class_labels=torch.cat([labels, null]),
    ).sample
    cond, uncond = both.chunk(2)
    return uncond + guidance_scale * (cond - uncond)

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
from .text import TextEmbeddings

# Small UNet2DConditionModel configurations (class-conditional; cross-attention arrives with
# the text encoder). The paper's text-to-video setting loads Stable Diffusion's UNet instead.
CONTENT_UNET_PRESETS: dict[str, dict] = {
    "tiny": dict(
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        mid_block_type="UNetMidBlock2D",
        attention_head_dim=32,
        norm_num_groups=8,
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
    text_embed_dim: int = 0,
) -> UNet2DConditionModel:
    """A fresh UNet2DConditionModel for content frames of ``channels`` × ``sample_size``.

    With ``num_classes > 0`` the class table has ``num_classes + 1`` rows; the last one is the
    null class used for classifier-free guidance (see :func:`content_prediction`). With
    ``text_embed_dim > 0`` the attention blocks become cross-attention blocks over the text
    encoder's token states (the Stable Diffusion way).
    """
    kwargs = content_unet_preset(preset)
    kwargs.update(overrides or {})
    if text_embed_dim:

        def cross(names):
            return tuple(n.replace("AttnDown", "CrossAttnDown").replace("AttnUp", "CrossAttnUp")
                         if not n.startswith("CrossAttn") else n for n in names)  # fmt: skip

        kwargs["down_block_types"] = cross(kwargs["down_block_types"])
        kwargs["up_block_types"] = cross(kwargs["up_block_types"])
        kwargs["mid_block_type"] = "UNetMidBlock2DCrossAttn"
        kwargs["cross_attention_dim"] = text_embed_dim
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


def uses_text(unet: UNet2DConditionModel) -> bool:
    """Whether the UNet has cross-attention blocks (then it needs text states)."""
    cfg = unet.config
    blocks = [*cfg.down_block_types, *cfg.up_block_types, cfg.mid_block_type or ""]
    return any("CrossAttn" in name for name in blocks)


def content_prediction(
    unet: UNet2DConditionModel,
    sample: torch.Tensor,
    timestep: torch.Tensor,
    class_labels: torch.Tensor | None = None,
    text: TextEmbeddings | None = None,
    null_text: TextEmbeddings | None = None,
    drop_class: torch.Tensor | None = None,
    drop_text: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
) -> torch.Tensor:
    """The UNet's prediction for content frames, with the null class / null text (the empty
    prompt, ``null_text``) where missing or dropped, and classifier-free guidance
    ``uncond + s * (cond - uncond)`` when ``guidance_scale != 1`` (uncond: every condition null).

    Args:
        sample: (B, C, H, W) noisy content frames; timestep: (B,) or scalar.
        class_labels: (B,) long in [0, num_classes) or None.
        text: prompt embeddings (B rows) or None; needs a UNet with cross-attention.
        null_text: the empty prompt's embeddings (one row); required by a text UNet.
        drop_class, drop_text: (B,) bool, rows that use the null condition (training dropout).

    Returns:
        (B, C, H, W).
    """
    n = num_content_classes(unet)
    b = sample.shape[0]
    timestep = timestep.expand(b) if timestep.ndim == 0 else timestep
    if class_labels is not None and n == 0:
        raise ValueError("this content model has no class conditioning")
    with_text = uses_text(unet)
    if text is not None and not with_text:
        raise ValueError("this content model has no text conditioning (no cross-attention)")
    if with_text and null_text is None:
        raise ValueError("a text-conditioned content model needs null_text (the empty prompt)")

    def run(x, t, labels, states):
        return unet(
            x,
            t,
            encoder_hidden_states=None if states is None else states.hidden,
            encoder_attention_mask=None if states is None else states.mask,
            class_labels=labels,
        ).sample

    labels = labels_with_null(class_labels, n, b, sample.device, drop_class) if n else None
    states = None
    if with_text:
        null = null_text.expand(b)
        states = null if text is None else text.where(
            torch.zeros(b, dtype=torch.bool) if drop_text is None else drop_text, null
        )  # fmt: skip
    if guidance_scale == 1.0 or (class_labels is None and text is None):
        return run(sample, timestep, labels, states)
    null_labels = labels_with_null(None, n, b, sample.device) if n else None
    both = run(
        torch.cat([sample, sample]),
        torch.cat([timestep, timestep]),
        None if labels is None else torch.cat([labels, null_labels]),
        None if states is None else states.cat(null_text.expand(b)),
    )
    cond, uncond = both.chunk(2)
    return uncond + guidance_scale * (cond - uncond)

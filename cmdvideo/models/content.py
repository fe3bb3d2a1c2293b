"""The content-frame denoiser (paper §3.2): an ordinary image diffusion model over content frames.

The point is reuse: a content frame is image-like, so any image diffusion UNet of diffusers
(``UNet2DConditionModel``, the Stable Diffusion UNet) can be loaded with ``from_pretrained``
and fine-tuned with no new parameters. Small configurations of the same class are trained from
scratch for the embedded dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from einops import rearrange
from torch import nn

from .blocks import grid_positional_embedding, labels_with_null, named_preset, run_blocks
from .conditioning import config_of, content_num_classes, content_uses_text
from .dit import DiTConditioning, guided_prediction
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


# The paper's text-to-video content model is Stable Diffusion's UNet, fine-tuned. This is the
# SD 1.5 UNet architecture (860 M parameters; text through CLIP ViT-L/14 states, width 768), for
# building on the meta device or from scratch; a real run loads the weights with content.init.
CONTENT_UNET_PRESETS["sd-1.5"] = dict(
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    mid_block_type="UNetMidBlock2DCrossAttn",
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    attention_head_dim=8,
    cross_attention_dim=768,
    norm_num_groups=32,
)

# Class-conditional content DiTs (pixel mode, UCF-101 style). Sizes are our reading of the
# paper (a DiT-L/2-like content model at 64x64 pixels), not verified against its code.
CONTENT_DIT_PRESETS: dict[str, dict] = {
    "tiny": dict(patch_size=2, hidden_size=128, depth=4, num_heads=4),
    "ucf101-pixel-64": dict(patch_size=2, hidden_size=1024, depth=24, num_heads=16),
}


def content_unet_preset(name: str) -> dict:
    """Architecture kwargs of a named preset; unknown names list the valid ones."""
    return named_preset(CONTENT_UNET_PRESETS, name, "content model")


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
            return tuple(
                n.replace("AttnDown", "CrossAttnDown").replace("AttnUp", "CrossAttnUp")
                if not n.startswith("CrossAttn")
                else n
                for n in names
            )

        converted = cross(kwargs["down_block_types"]) != tuple(kwargs["down_block_types"])
        kwargs["down_block_types"] = cross(kwargs["down_block_types"])
        kwargs["up_block_types"] = cross(kwargs["up_block_types"])
        kwargs["mid_block_type"] = "UNetMidBlock2DCrossAttn"
        head_dim = kwargs.get("attention_head_dim")
        if converted and isinstance(head_dim, int):
            # UNet2DConditionModel reads `attention_head_dim` as the number of heads of its
            # cross-attention blocks (a historical misnomer kept for SD configs), while the
            # self-attention blocks above read it as the width per head: convert, or a width of
            # 64 gets 32 heads of 2 channels (slow, and too narrow to attend with).
            widths = kwargs["block_out_channels"]
            kwargs["attention_head_dim"] = tuple(max(1, c // head_dim) for c in widths)
        kwargs["cross_attention_dim"] = text_embed_dim
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=channels,
        out_channels=channels,
        num_class_embeds=num_classes + 1 if num_classes else None,
        cross_attention_dim=kwargs.pop("cross_attention_dim", kwargs["block_out_channels"][-1]),
        **kwargs,
    )


class ContentDiT(ModelMixin, ConfigMixin, DiTConditioning):
    """A DiT over content frames: patchify, adaLN-Zero blocks conditioned on timestep + class
    (+ pooled text), unpatchify. Shares its conditioning and blocks with the motion DiT.

    Shapes: sample (B, C, H, W) -> prediction (B, C, H, W); tokens (B, H/p * W/p, D).
    """

    _supports_gradient_checkpointing = True  # its adaLN-Zero blocks

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        sample_size: tuple[int, int] = (32, 32),
        patch_size: int = 2,
        hidden_size: int = 128,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        num_classes: int = 0,
        text_embed_dim: int = 0,
    ):
        super().__init__()
        d, p = hidden_size, patch_size
        self.patch_embed = nn.Linear(in_channels * p * p, d)
        self.init_conditioning(d, num_classes, text_embed_dim)
        self.init_blocks(d, depth, num_heads, mlp_ratio, in_channels * p * p)
        self.initialize_dit_weights()

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
        drop_condition: torch.Tensor | None = None,
        drop_text: torch.Tensor | None = None,
    ) -> torch.Tensor:
        p = self.config.patch_size
        b, c, height, width = sample.shape
        if c != self.config.in_channels or height % p or width % p:
            raise ValueError(
                f"sample must be (B, {self.config.in_channels}, H, W) with H and W multiples of "
                f"patch_size={p}, got {tuple(sample.shape)}"
            )
        gh, gw = height // p, width // p
        x = self.patch_embed(
            rearrange(sample, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=p, p2=p)
        )  # (B, gh*gw, D)
        x = x + grid_positional_embedding((gh, gw), self.config.hidden_size, x.device, x.dtype)
        cond = self.condition_embedding(
            timestep, b, class_labels, text_embeds, drop_condition, drop_text
        )
        x = run_blocks(self, self.blocks, x, cond)  # (B, gh*gw, D)
        out = self.final_layer(x, cond)  # (B, gh*gw, C*p*p)
        return rearrange(out, "b (h w) (c p1 p2) -> b c (h p1) (w p2)", h=gh, p1=p, p2=p)

    def guided(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
        guidance_scale: float = 1.0,
        guidance_rescale: float = 0.0,
    ) -> torch.Tensor:
        """Classifier-free guidance, as the motion DiT's ``guided``: one pass over a doubled
        batch, the second half under the null class / null text; scale 1: one plain pass.

        Returns:
            (B, C, H, W).
        """
        inputs = (sample, timestep, class_labels, text_embeds)
        return self.guided_over(inputs, guidance_scale, guidance_rescale)


def build_content_dit(
    preset: str,
    channels: int,
    sample_size: tuple[int, int],
    num_classes: int = 0,
    overrides: dict | None = None,
    text_embed_dim: int = 0,
) -> ContentDiT:
    """A fresh :class:`ContentDiT` from a named preset (``CONTENT_DIT_PRESETS``)."""
    kwargs = {**named_preset(CONTENT_DIT_PRESETS, preset, "content DiT"), **(overrides or {})}
    return ContentDiT(
        in_channels=channels,
        sample_size=tuple(sample_size),
        num_classes=num_classes,
        text_embed_dim=text_embed_dim,
        **kwargs,
    )


def load_content_model(name_or_path: str | Path, subfolder: str | None = None):
    """A pretrained content model: a :class:`ContentDiT` folder, else a UNet2DConditionModel
    (local directory or hub id, e.g. an SD repo with ``subfolder="unet"``)."""
    config = Path(name_or_path) / (subfolder or "") / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("_class_name") == "ContentDiT":
        return ContentDiT.from_pretrained(name_or_path, subfolder=subfolder)
    return UNet2DConditionModel.from_pretrained(name_or_path, subfolder=subfolder)


def num_content_classes(model) -> int:
    """Class labels the content model was built for (null row excluded); 0 without classes."""
    return content_num_classes(config_of(model))


def uses_text(model) -> bool:
    """Whether the content model is text-conditioned (a UNet with cross-attention blocks, or a
    DiT with a pooled-text input)."""
    return content_uses_text(config_of(model))


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
    guidance_rescale: float = 0.0,
) -> torch.Tensor:
    """The UNet's prediction for content frames, with the null class / null text (the empty
    prompt, ``null_text``) where missing or dropped, and classifier-free guidance
    ``uncond + s * (cond - uncond)`` when ``guidance_scale != 1`` (uncond: every condition null),
    rescaled by ``guidance_rescale`` (see :func:`cmdvideo.models.dit.guided_prediction`).

    Args:
        sample: (B, C, H, W) noisy content frames; timestep: (B,) or scalar.
        class_labels: (B,) long in [0, num_classes) or None.
        text: prompt embeddings (B rows) or None; needs a UNet with cross-attention.
        null_text: the empty prompt's embeddings (one row); required by a text UNet.
        drop_class, drop_text: (B,) bool, rows that use the null condition (training dropout).

    Returns:
        (B, C, H, W).
    """
    b = sample.shape[0]
    timestep = timestep.expand(b) if timestep.ndim == 0 else timestep
    n, with_text = num_content_classes(unet), uses_text(unet)
    if class_labels is not None and n == 0:
        raise ValueError("this content model has no class conditioning")
    if text is not None and not with_text:
        raise ValueError("this content model has no text conditioning (no cross-attention)")
    if class_labels is None and text is None:
        guidance_scale = 1.0  # nothing to guide towards
    if hasattr(unet, "guided"):  # a DiT: pooled text, learned null embeddings, its own guidance
        pooled = None if text is None else text.pooled
        if guidance_scale == 1.0:
            return unet(sample, timestep, class_labels, pooled, drop_class, drop_text)
        return unet.guided(sample, timestep, class_labels, pooled, guidance_scale, guidance_rescale)
    if with_text and null_text is None:
        raise ValueError("a text-conditioned content model needs null_text (the empty prompt)")
    labels = labels_with_null(class_labels, n, b, sample.device, drop_class) if n else None
    states = _prompt_states(with_text, text, null_text, drop_text, b)
    if guidance_scale == 1.0:
        return _unet_run(unet, sample, timestep, labels, states)
    null_labels = labels_with_null(None, n, b, sample.device) if n else None
    both = _unet_run(
        unet,
        torch.cat([sample, sample]),
        torch.cat([timestep, timestep]),
        None if labels is None else torch.cat([labels, null_labels]),
        None if states is None else states.cat(null_text.expand(b)),
    )
    cond, uncond = both.chunk(2)
    return guided_prediction(cond, uncond, guidance_scale, guidance_rescale)


def _unet_run(unet, x, t, labels, states) -> torch.Tensor:
    """A diffusers UNet's prediction under class labels and prompt embeddings (either None)."""
    return unet(
        x,
        t,
        encoder_hidden_states=None if states is None else states.hidden,
        encoder_attention_mask=None if states is None else states.mask,
        class_labels=labels,
    ).sample


def _prompt_states(with_text: bool, text, null_text, drop_text, b: int):
    """A UNet's prompt embeddings for ``b`` rows: the empty prompt where missing or dropped;
    None for a UNet without cross-attention."""
    if not with_text:
        return None
    null = null_text.expand(b)
    if text is None:
        return null
    dropped = torch.zeros(b, dtype=torch.bool) if drop_text is None else drop_text
    return text.where(dropped, null)

"""The motion diffusion transformer (paper §3.3): denoises a motion latent, guided densely by the
content frame and conditioned on the timestep and a class label or pooled text embedding.

Shapes (B batch, D_m motion channels, T frames, L = h + w motion positions, C/H/W the content
frame, p_m motion patch, p_c content patch, D hidden width):

    motion_latent  (B, D_m, T, L)      noisy input; the output (ε or v) has the same shape
    content_frame  (B, C, H, W)        clean content frame (the encoder's in training, the
                                       generated one at sampling time)
    tokens         (B, T/p_m * L/p_m + H/p_c * W/p_c, D)   motion tokens first, then content
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.modeling_utils import ModelMixin
from einops import rearrange
from torch import nn

from .blocks import grid_positional_embedding, named_preset, run_blocks
from .dit import DiTConditioning

MOTION_DIT_PRESETS: dict[str, dict] = {
    "tiny": dict(hidden_size=128, depth=4, num_heads=4, motion_patch_size=2, content_patch_size=4),
    # Our reading of the paper's sizes (DiT-L-like width for the motion model); not verified.
    "ucf101-pixel-64": dict(
        hidden_size=768, depth=12, num_heads=12, motion_patch_size=2, content_patch_size=8
    ),
    "webvid-latent-512x1024": dict(
        hidden_size=1024, depth=24, num_heads=16, motion_patch_size=2, content_patch_size=4
    ),
}


def motion_dit_preset(name: str) -> dict:
    """Architecture kwargs of a named preset; unknown names list the valid ones."""
    return named_preset(MOTION_DIT_PRESETS, name, "motion DiT")


class MotionDiT(ModelMixin, ConfigMixin, PeftAdapterMixin, DiTConditioning):
    """DiT over the motion latent with the content frame's tokens as extra input tokens.
    LoRA adapters load as on diffusers' models (``load_lora_adapter``, ``set_adapters``).

    Conditions: ``class_labels`` (when ``num_classes > 0``) and/or ``text_embeds`` (pooled,
    when ``text_embed_dim > 0``). Each has a learned "null" embedding used where
    ``drop_condition`` is True — training drops conditions at random and sampling runs a
    dropped copy of the batch for classifier-free guidance.

    Args:
        motion_channels: D_m.
        content_channels: C of the content frame (3 pixels, 4 SD latents).
        motion_patch_size: p_m, patch on the (T, L) motion grid.
        content_patch_size: p_c, patch on the content frame (larger than p_m: the content is
            guidance, it need not be resolved finely).
        hidden_size, depth, num_heads, mlp_ratio: transformer size.
        num_classes: number of class labels (0: no class conditioning).
        text_embed_dim: width of pooled text embeddings (0: no text conditioning).
    """

    _supports_gradient_checkpointing = True  # its adaLN-Zero blocks

    @register_to_config
    def __init__(
        self,
        motion_channels: int = 8,
        content_channels: int = 3,
        motion_patch_size: int = 2,
        content_patch_size: int = 4,
        hidden_size: int = 128,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        num_classes: int = 0,
        text_embed_dim: int = 0,
    ):
        super().__init__()
        d, pm, pc = hidden_size, motion_patch_size, content_patch_size
        self.motion_embed = nn.Linear(motion_channels * pm * pm, d)
        self.content_embed = nn.Linear(content_channels * pc * pc, d)
        # Marks which tokens are content (guidance) and which are motion (to be denoised).
        self.token_type = nn.Parameter(torch.zeros(2, d))
        self.init_conditioning(d, num_classes, text_embed_dim)
        self.init_blocks(d, depth, num_heads, mlp_ratio, motion_channels * pm * pm)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """All special initialisation in one place (following DiT)."""
        self.initialize_dit_weights()
        nn.init.normal_(self.token_type, std=0.02)

    # -- forward ---------------------------------------------------------------------------

    def forward(
        self,
        motion_latent: torch.Tensor,
        timestep: torch.Tensor,
        content_frame: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
        drop_condition: torch.Tensor | None = None,
        drop_text: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the noise (or v) of a noisy motion latent.

        Args:
            motion_latent: (B, D_m, T, L) noisy motion latent.
            timestep: (B,) or scalar diffusion timesteps.
            content_frame: (B, C, H, W) the content frame that guides the motion.
            class_labels: (B,) long in [0, num_classes) or None.
            text_embeds: (B, text_embed_dim) pooled text embeddings or None.
            drop_condition: (B,) bool; True rows use the null condition (CFG).
            drop_text: (B,) bool; if given, the text's own drop mask.

        Returns:
            (B, D_m, T, L), same shape as ``motion_latent``.
        """
        cfg = self.config
        pm, pc = cfg.motion_patch_size, cfg.content_patch_size
        b, dm, t, length = motion_latent.shape
        if dm != cfg.motion_channels or t % pm or length % pm:
            raise ValueError(
                f"motion_latent must be (B, {cfg.motion_channels}, T, L) with T and L multiples "
                f"of motion_patch_size={pm}, got {tuple(motion_latent.shape)}"
            )
        if content_frame.ndim != 4 or content_frame.shape[1] != cfg.content_channels:
            raise ValueError(
                f"content_frame must be (B, {cfg.content_channels}, H, W), "
                f"got {tuple(content_frame.shape)}"
            )
        height, width = content_frame.shape[-2:]
        if height % pc or width % pc or content_frame.shape[0] != b:
            raise ValueError(
                f"content_frame {tuple(content_frame.shape)} must match the batch size {b} and "
                f"have H and W that are multiples of content_patch_size={pc}"
            )
        gt, gl, gh, gw = t // pm, length // pm, height // pc, width // pc
        d = cfg.hidden_size

        motion_tokens = self.motion_embed(
            rearrange(motion_latent, "b c (t p1) (l p2) -> b (t l) (c p1 p2)", p1=pm, p2=pm)
        )  # (B, gt*gl, D)
        motion_tokens = motion_tokens + self.token_type[0]
        motion_tokens = motion_tokens + grid_positional_embedding(
            (gt, gl), d, motion_tokens.device, motion_tokens.dtype
        )
        content_tokens = self.content_embed(
            rearrange(content_frame, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=pc, p2=pc)
        )  # (B, gh*gw, D)
        content_tokens = content_tokens + self.token_type[1]
        content_tokens = content_tokens + grid_positional_embedding(
            (gh, gw), d, content_tokens.device, content_tokens.dtype
        )
        x = torch.cat([motion_tokens, content_tokens], dim=1)  # (B, N_m + N_c, D)

        c = self.condition_embedding(
            timestep, b, class_labels, text_embeds, drop_condition, drop_text
        )
        x = run_blocks(self, self.blocks, x, c)  # (B, N, D)
        out = self.final_layer(x[:, : gt * gl], c)  # motion tokens only: (B, gt*gl, D_m*pm*pm)
        return rearrange(
            out, "b (t l) (c p1 p2) -> b c (t p1) (l p2)", t=gt, l=gl, p1=pm, p2=pm
        )  # (B, D_m, T, L)

    def guided(
        self,
        motion_latent: torch.Tensor,
        timestep: torch.Tensor,
        content_frame: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
        guidance_scale: float = 1.0,
        guidance_rescale: float = 0.0,
    ) -> torch.Tensor:
        """Classifier-free guidance: ``uncond + s * (cond - uncond)`` on every output channel
        (``guidance_rescale``: see :func:`cmdvideo.models.dit.guided_prediction`).

        One forward pass over a doubled batch: the first half conditional, the second half the
        same inputs with ``drop_condition=True`` (null class / null text). ``guidance_scale``
        1 is the plain conditional prediction (one pass over the batch).

        Returns:
            (B, D_m, T, L).
        """
        inputs = (motion_latent, timestep, content_frame, class_labels, text_embeds)
        return self.guided_over(inputs, guidance_scale, guidance_rescale)

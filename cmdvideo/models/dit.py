"""What the DiTs of cmdvideo share (the motion DiT, paper §3.3, and the class-conditional
content DiT for pixel mode): timestep + class + pooled-text conditioning with learned null
embeddings, adaLN-Zero blocks and output layer, DiT initialisation, classifier-free guidance.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

from .blocks import AdaLNZeroBlock, labels_with_null, modulate, xavier_linear_init


class DiTConditioning:
    """Mixin for a ``ModelMixin`` DiT with ``config.num_classes`` and ``config.text_embed_dim``.

    Attribute names are part of saved checkpoints: keep them.
    """

    def guided_over(
        self, inputs: tuple, guidance_scale: float, guidance_rescale: float = 0.0
    ) -> torch.Tensor:
        """Classifier-free guidance of this model's forward on ``inputs`` (its positional
        arguments, batch first): :func:`classifier_free_guidance` with the null condition
        (``drop_condition``) in the second half of a doubled batch."""
        return classifier_free_guidance(
            lambda x, drop: self(*x, drop_condition=drop), inputs, guidance_scale, guidance_rescale
        )

    def init_conditioning(self, d: int, num_classes: int, text_embed_dim: int) -> None:
        self.time_proj = Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(256, d)
        # Class table has one extra row: the null (unconditional) class, as in DiT.
        self.class_embed = nn.Embedding(num_classes + 1, d) if num_classes > 0 else None
        if text_embed_dim > 0:
            self.text_proj = nn.Sequential(nn.Linear(text_embed_dim, d), nn.SiLU(), nn.Linear(d, d))
            self.null_text = nn.Parameter(torch.zeros(d))
        else:
            self.text_proj = None

    def init_blocks(self, d: int, depth: int, num_heads: int, mlp_ratio: float, out_dim: int):
        self.blocks = nn.ModuleList(AdaLNZeroBlock(d, num_heads, mlp_ratio) for _ in range(depth))
        self.gradient_checkpointing = False  # set by enable_gradient_checkpointing
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.final_proj = nn.Linear(d, out_dim)

    def initialize_dit_weights(self) -> None:
        """DiT's initialisation: xavier linears, small embeddings, adaLN-Zero (every block's
        modulation and the output layer start at zero, so the model starts as the identity
        residual stream with a zero prediction)."""
        self.apply(xavier_linear_init)
        for layer in (self.time_embed.linear_1, self.time_embed.linear_2):
            nn.init.normal_(layer.weight, std=0.02)
        if self.class_embed is not None:
            nn.init.normal_(self.class_embed.weight, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.modulation[-1].weight)
            nn.init.zeros_(block.modulation[-1].bias)
        nn.init.zeros_(self.final_modulation[-1].weight)
        nn.init.zeros_(self.final_modulation[-1].bias)
        nn.init.zeros_(self.final_proj.weight)
        nn.init.zeros_(self.final_proj.bias)

    def final_layer(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """(B, N, D) tokens, (B, D) condition -> (B, N, out_dim)."""
        shift, scale = self.final_modulation(c).chunk(2, dim=-1)
        return self.final_proj(modulate(self.final_norm(x), shift, scale))

    def condition_embedding(
        self,
        timestep: torch.Tensor,
        batch_size: int,
        class_labels: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
        drop_condition: torch.Tensor | None = None,
        drop_text: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """c = timestep embedding + class embedding + text embedding, (B, D).

        Missing conditions (None) and rows where ``drop_condition`` is True use the null
        embeddings, so the same model gives the unconditional prediction for CFG.
        ``drop_text``, when given, replaces ``drop_condition`` for the text alone (training
        with class and text drops them independently).
        """
        cfg = self.config
        if timestep.ndim == 0:
            timestep = timestep.expand(batch_size)
        c = self.time_embed(self.time_proj(timestep).to(self.dtype))  # (B, D)
        drop = (
            torch.zeros(batch_size, dtype=torch.bool, device=c.device)
            if drop_condition is None
            else drop_condition.to(c.device, torch.bool)
        )
        if self.class_embed is not None:
            labels = labels_with_null(class_labels, cfg.num_classes, batch_size, c.device, drop)
            c = c + self.class_embed(labels)
        elif class_labels is not None:
            raise ValueError("this motion model has no class conditioning (num_classes=0)")
        if self.text_proj is not None:
            null = self.null_text.expand(batch_size, -1)
            if text_embeds is None:
                c = c + null
            else:
                text = self.text_proj(text_embeds.to(c.dtype))  # (B, D)
                drop_t = drop if drop_text is None else drop_text.to(c.device, torch.bool)
                c = c + torch.where(drop_t[:, None], null, text)
        elif text_embeds is not None:
            raise ValueError("this motion model has no text conditioning (text_embed_dim=0)")
        return c


def guided_prediction(
    cond: torch.Tensor, uncond: torch.Tensor, guidance_scale: float, guidance_rescale: float = 0.0
) -> torch.Tensor:
    """``uncond + s * (cond - uncond)`` on every output channel; with ``guidance_rescale`` φ > 0
    the result's per-sample standard deviation is pulled back towards the conditional
    prediction's (Lin et al. 2023, §3.4; diffusers' ``rescale_noise_cfg``): φ = 1 matches it,
    which keeps large scales from oversaturating colours."""
    if not 0.0 <= guidance_rescale <= 1.0:
        raise ValueError(f"guidance_rescale must be in [0, 1], got {guidance_rescale}")
    guided = uncond + guidance_scale * (cond - uncond)
    if guidance_rescale > 0:
        try:  # diffusers' home of it since the guiders (light: no transformers import)
            from diffusers.guiders.guider_utils import rescale_noise_cfg
        except ImportError:  # older diffusers
            from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import (
                rescale_noise_cfg,
            )

        guided = rescale_noise_cfg(guided, cond, guidance_rescale=guidance_rescale)
    return guided


def classifier_free_guidance(
    forward: Callable[[tuple, torch.Tensor], torch.Tensor],
    inputs: tuple,
    guidance_scale: float,
    guidance_rescale: float = 0.0,
) -> torch.Tensor:
    """``uncond + s * (cond - uncond)`` on every output channel, from one forward pass over a
    doubled batch: the first half conditional, the second half the same inputs with the null
    condition (``drop=True``). Scale 1 is the plain conditional prediction (one pass).
    ``guidance_rescale``: see :func:`guided_prediction`.

    Args:
        forward: ``(inputs, drop) -> prediction``; ``drop`` is a (B,) or (2B,) bool mask.
        inputs: batch tensors (or None); the first one gives the batch size. A scalar (0-d)
            tensor, e.g. the timestep, is broadcast to the batch.
    """
    b = inputs[0].shape[0]
    device = inputs[0].device
    if guidance_scale == 1.0:
        return forward(inputs, torch.zeros(b, dtype=torch.bool, device=device))

    def twice(x):
        if x is None:
            return None
        x = x.expand(b) if x.ndim == 0 else x
        return torch.cat([x, x])

    drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)])
    cond, uncond = forward(tuple(twice(x) for x in inputs), drop.to(device)).chunk(2)
    return guided_prediction(cond, uncond, guidance_scale, guidance_rescale)

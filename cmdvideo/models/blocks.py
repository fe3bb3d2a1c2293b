"""Shared transformer pieces: attention, MLP, positional embeddings, factorized video blocks.

Every transformer in cmdvideo (the autoencoder's encoder and decoder now, the motion DiT later)
is built from these, so attention is written once and always goes through
``torch.nn.functional.scaled_dot_product_attention`` (flash / memory-efficient kernels on GPU).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def sincos_embedding(
    positions: torch.Tensor, dim: int, max_period: float = 10_000.0
) -> torch.Tensor:
    """Fixed sinusoidal embedding of (possibly fractional) positions.

    Args:
        positions: (N,) float or int positions.
        dim: embedding width, even.

    Returns:
        (N, dim) float32: ``[sin(p * w_k), cos(p * w_k)]`` with geometric frequencies ``w_k``.
    """
    assert dim % 2 == 0, "sincos embedding width must be even"
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period)
        * torch.arange(half, dtype=torch.float32, device=positions.device)
        / half
    )  # (half,)
    angles = positions.float()[:, None] * freqs[None]  # (N, half)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)  # (N, dim)


def axis_dims(dim: int, num_axes: int) -> list[int]:
    """Split ``dim`` channels into ``num_axes`` even parts (the first takes the remainder)."""
    part = (dim // num_axes) // 2 * 2
    first = dim - part * (num_axes - 1)
    if part == 0 or first % 2:
        raise ValueError(f"hidden size {dim} is too small or odd to split over {num_axes} axes")
    return [first] + [part] * (num_axes - 1)


def grid_positional_embedding(
    grid: tuple[int, ...], dim: int, device=None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Separable sin-cos embedding for an N-d token grid (e.g. (T, h, w) or (h, w)).

    Each axis gets its own slice of the channels, so position along t, i and j is each
    recoverable (summing per-axis embeddings in the same channels would alias them). Because the
    embedding is computed from the grid size, any resolution and frame count works, square or not.

    Returns:
        (prod(grid), dim) in ``dtype`` (computed in float32), in row-major order of ``grid``.
    """
    dims = axis_dims(dim, len(grid))
    parts = []
    for axis, (size, width) in enumerate(zip(grid, dims)):
        emb = sincos_embedding(torch.arange(size, device=device), width)  # (size, width)
        shape = [1] * len(grid) + [width]
        shape[axis] = size
        parts.append(emb.view(shape).expand(*grid, width))
    return torch.cat(parts, dim=-1).reshape(-1, dim).to(dtype)  # (prod(grid), dim)


class Attention(nn.Module):
    """Multi-head self-attention over the second-to-last axis of (batch, tokens, dim)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden size {dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(
            self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.num_heads
        )
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, d)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))  # (B, N, D)


class Mlp(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class FactorizedVideoBlock(nn.Module):
    """Pre-norm block: attention over time (per position), over space (per frame), then MLP.

    Factorizing keeps the cost at O(T^2 + (hw)^2) per token instead of O((T hw)^2) (CMD §3.1,
    following TimeSformer's divided space-time attention).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm_t = nn.LayerNorm(dim)
        self.attn_t = Attention(dim, num_heads)
        self.norm_s = nn.LayerNorm(dim)
        self.attn_s = Attention(dim, num_heads)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, T, N, D), N = h * w spatial tokens
        b, t, n, _ = x.shape
        xt = rearrange(x, "b t n d -> (b n) t d")  # (B*N, T, D)
        xt = xt + self.attn_t(self.norm_t(xt))
        x = rearrange(xt, "(b n) t d -> (b t) n d", b=b, n=n)  # (B*T, N, D)
        x = x + self.attn_s(self.norm_s(x))
        x = x + self.mlp(self.norm_mlp(x))
        return rearrange(x, "(b t) n d -> b t n d", b=b, t=t)  # (B, T, N, D)


def run_blocks(owner: nn.Module, blocks: nn.ModuleList, x: torch.Tensor, *args) -> torch.Tensor:
    """``x`` through every block; with the owner's ``gradient_checkpointing`` on (diffusers'
    ``enable_gradient_checkpointing``) and gradients recorded, each block's activations are
    recomputed in the backward pass instead of kept."""
    checkpoint = getattr(owner, "gradient_checkpointing", False) and torch.is_grad_enabled()
    for block in blocks:
        x = owner._gradient_checkpointing_func(block, x, *args) if checkpoint else block(x, *args)
    return x


class VideoTransformer(nn.Module):
    """A stack of factorized blocks on a (T, h, w) token grid with separable sin-cos positions."""

    def __init__(self, dim: int, depth: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.dim = dim
        self.gradient_checkpointing = False  # set by the model's enable_gradient_checkpointing
        self.blocks = nn.ModuleList(
            FactorizedVideoBlock(dim, num_heads, mlp_ratio) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, T, h, w, D)
        b, t, h, w, d = x.shape
        pos = grid_positional_embedding((t, h, w), d, x.device, x.dtype)  # (T*h*w, D)
        x = x + pos.view(t, h, w, d)
        x = run_blocks(self, self.blocks, x.reshape(b, t, h * w, d))  # (B, T, N, D)
        return self.norm(x).view(b, t, h, w, d)  # (B, T, h, w, D)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: ``x * (1 + scale) + shift`` with per-sample (B, D) shift/scale over (B, N, D)."""
    return x * (1 + scale[:, None]) + shift[:, None]


class AdaLNZeroBlock(nn.Module):
    """DiT block: self-attention and MLP, each pre-normed with a shift/scale and gated by a
    gate computed from the conditioning vector ``c`` (adaLN-Zero, Peebles & Xie 2023).

    The modulation projection is zero-initialised by the owning model, so every block starts
    as the identity and the network starts from a stable point (CMD §3.3 uses this for the
    timestep and class/text condition of the motion DiT).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, mlp_ratio)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # x: (B, N, D) tokens, c: (B, D) condition
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c).chunk(6, dim=-1)
        x = x + gate1[:, None] * self.attn(modulate(self.norm1(x), shift1, scale1))
        x = x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))
        return x  # (B, N, D)


def named_preset(presets: dict[str, dict], name: str, kind: str) -> dict:
    """A copy of ``presets[name]`` (architecture kwargs); unknown names list the valid ones."""
    if name not in presets:
        raise ValueError(f"unknown {kind} preset {name!r}; choose one of {sorted(presets)}")
    return dict(presets[name])


def xavier_linear_init(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every ``nn.Linear`` (use with ``.apply``)."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def labels_with_null(
    class_labels: torch.Tensor | None,
    num_classes: int,
    batch_size: int,
    device,
    drop_condition: torch.Tensor | None = None,
) -> torch.Tensor:
    """Class ids for a class table whose extra last row (id ``num_classes``) is the null class:
    the null id where no label is given or where ``drop_condition`` is True (CFG).

    Returns:
        (B,) long. Raises ValueError for labels outside [0, num_classes).
    """
    null = torch.full((batch_size,), num_classes, dtype=torch.long, device=device)
    if class_labels is None:
        return null
    if class_labels.min() < 0 or class_labels.max() >= num_classes:
        raise ValueError(
            f"class_labels must be in [0, {num_classes - 1}], got {class_labels.tolist()}"
        )
    labels = class_labels.to(device=device, dtype=torch.long)
    if drop_condition is not None:
        labels = torch.where(drop_condition.to(device, torch.bool), null, labels)
    return labels

"""Pixel quality of videos in the value range the data uses ([-1, 1]): PSNR and SSIM per frame.

Both are computed on frames mapped to [0, 1] (data range 1), the convention of image/video
autoencoder papers. Training previews log them too: the one module of evaluation/ that
training imports (torch only; `tests/test_layout.py`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange


def _frames01(video: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) in [-1, 1] -> (B*T, C, H, W) in [0, 1], float64 for stable statistics."""
    return rearrange((video.double().clamp(-1, 1) + 1) / 2, "b c t h w -> (b t) c h w")


def psnr_per_frame(video: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of every frame; (B, C, T, H, W) pair in [-1, 1] -> (B, T). Capped at 100 dB."""
    a, b = _frames01(video), _frames01(reference)
    mse = (a - b).pow(2).flatten(1).mean(dim=1).clamp_min(1e-10)
    return (10 * torch.log10(1.0 / mse)).view(video.shape[0], video.shape[2])


def _gaussian_window(size: int, sigma: float, channels: int, device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim_per_frame(
    video: torch.Tensor, reference: torch.Tensor, window_size: int = 11, sigma: float = 1.5
) -> torch.Tensor:
    """SSIM (Wang et al. 2004: Gaussian window 11, sigma 1.5, K1=0.01, K2=0.03, data range 1),
    mean over pixels and channels of every frame; (B, C, T, H, W) pair in [-1, 1] -> (B, T).

    Frames smaller than the window use a window of the frame's smaller side (odd).
    """
    a, b = _frames01(video), _frames01(reference)
    channels = a.shape[1]
    side = min(a.shape[-2:])
    size = window_size if side >= window_size else side - 1 + side % 2  # largest odd <= side
    win = _gaussian_window(size, sigma, channels, a.device)

    def blur(x):
        return F.conv2d(x, win, groups=channels)  # "valid" filtering, as in the reference code

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return ssim_map.flatten(1).mean(dim=1).view(video.shape[0], video.shape[2])

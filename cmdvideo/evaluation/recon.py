"""Reconstruction quality of the autoencoder: PSNR and SSIM per frame, averaged.

Both are computed on frames mapped from [-1, 1] to [0, 1] (data range 1), the convention of
image/video autoencoder papers; PSNR is averaged in dB over frames, then videos.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..data import collate_videos


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


def compression_ratio(codec, num_frames: int, height: int, width: int) -> dict:
    """Numbers in the video the autoencoder sees vs. in (content frame + motion latent)."""
    ae = codec.autoencoder
    f = codec.frame_vae.downsample if codec.latent_mode else 1
    c, hh, ww = ae.config.in_channels, height // f, width // f
    motion = math.prod(ae.motion_latent_shape(num_frames, hh, ww))
    video = c * num_frames * hh * ww
    return {
        "video_numbers": video,
        "content_frame_numbers": c * hh * ww,
        "motion_latent_numbers": motion,
        "compression_ratio": video / (c * hh * ww + motion),
    }


@torch.no_grad()
def evaluate_reconstruction(
    codec,
    dataset: Dataset,
    num_videos: int = 256,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict:
    """PSNR/SSIM of ``codec.decode(*codec.encode(video))`` against the input on the first
    ``num_videos`` items of ``dataset`` (deterministic: held-out seeds / center crops).

    Returns:
        dict with psnr, psnr_std (over videos), ssim, num_videos, psnr_by_class (class name ->
        mean PSNR, for labelled data), and the compression numbers.
    """
    if num_videos < 1:
        raise ValueError("num_videos must be at least 1")
    num_videos = min(num_videos, len(dataset))
    subset = torch.utils.data.Subset(dataset, range(num_videos))
    loader = DataLoader(subset, batch_size=batch_size, collate_fn=collate_videos)
    codec = codec.to(device).eval()
    psnrs, ssims, labels = [], [], []
    shape = None
    for batch in tqdm(loader, desc="eval autoencoder", disable=not progress):
        video = batch["video"].to(device)
        shape = video.shape
        recon = codec.decode(*codec.encode(video)).float()
        psnrs.append(psnr_per_frame(recon, video).mean(dim=1).cpu())
        ssims.append(ssim_per_frame(recon, video).mean(dim=1).cpu())
        labels.append(batch["label"])
    psnr_v, ssim_v, label_v = torch.cat(psnrs), torch.cat(ssims), torch.cat(labels)
    names = getattr(dataset, "classes", None) or []
    by_class = {
        (names[c] if 0 <= c < len(names) else str(c)): psnr_v[label_v == c].mean().item()
        for c in sorted(set(label_v.tolist()))
        if c >= 0
    }
    return {
        "psnr": psnr_v.mean().item(),
        "psnr_std": psnr_v.std().item() if len(psnr_v) > 1 else 0.0,
        "ssim": ssim_v.mean().item(),
        "num_videos": len(psnr_v),
        "psnr_by_class": by_class,
        "video_shape": list(shape[1:]),
        **compression_ratio(codec, shape[2], shape[3], shape[4]),
    }


@torch.no_grad()
def decomposition_probe(
    codec,
    num_pairs: int = 200,
    num_frames: int = 16,
    height: int = 32,
    width: int = 32,
    batch_size: int = 50,
    device: str | torch.device = "cpu",
) -> dict:
    """Does the content frame carry the appearance and the motion latent the motion? (CMD's
    decomposition, measured with moving-shapes' known factors.)

    For held-out pairs (A, B) the target is A's appearance rendered with B's motion. Reported
    PSNRs against that target: decode(content of A, motion of B) — the swap — beside the
    trivial baselines decode(A, A) (right appearance, wrong motion) and decode(B, B) (right
    motion, wrong appearance). A decomposed autoencoder puts the swap above both.

    Returns:
        {"swap_psnr", "same_a_psnr", "same_b_psnr", "num_pairs"} (dB, mean over pairs).
    """
    from ..data.moving_shapes import MovingShapes, VideoFactors, render_video

    if num_pairs < 1:
        raise ValueError("num_pairs must be at least 1")
    data = MovingShapes(num_videos=10**6, num_frames=num_frames, height=height, width=width,
                        seed=1)  # fmt: skip
    codec = codec.to(device).eval()
    sums = {"swap_psnr": 0.0, "same_a_psnr": 0.0, "same_b_psnr": 0.0}
    for start in range(0, num_pairs, batch_size):
        pairs = [(i, num_pairs + i) for i in range(start, min(num_pairs, start + batch_size))]
        video_a = torch.stack([data[a]["video"] for a, _ in pairs]).to(device)
        video_b = torch.stack([data[b]["video"] for _, b in pairs]).to(device)
        target = torch.stack([
            render_video(VideoFactors(data.factors(a).appearance, data.factors(b).motion),
                         num_frames, height, width)
            for a, b in pairs
        ]).to(device)  # fmt: skip
        content_a, motion_a = codec.encode(video_a)
        content_b, motion_b = codec.encode(video_b)
        for name, video in (
            ("swap_psnr", codec.decode(content_a, motion_b)),
            ("same_a_psnr", codec.decode(content_a, motion_a)),
            ("same_b_psnr", codec.decode(content_b, motion_b)),
        ):
            sums[name] += psnr_per_frame(video.float(), target).mean(dim=1).sum().item()
    return {**{k: v / num_pairs for k, v in sums.items()}, "num_pairs": num_pairs}

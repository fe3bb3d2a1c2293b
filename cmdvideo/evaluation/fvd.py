"""Fréchet Video Distance with the standard protocol, every choice recorded in the result.

Protocol defaults (the StyleGAN-V / TATS convention): 16 frames per video (at least 9, which
I3D's temporal pooling needs), frames quantised to uint8 identically for real and generated
videos, each frame resized bilinearly to 224×224 (or: short side to 224, then a center crop),
scaled to [-1, 1], the I3D's 400-d logits averaged over time as the feature, 2048 real and 2048
generated videos, biased covariances and scipy's matrix square root.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .frechet import FeatureStats, frechet_distance_from_stats

MIN_FRAMES = 9


@dataclass
class FVDProtocol:
    num_frames: int = 16
    num_real: int = 2048
    num_generated: int = 2048
    resize: str = "bilinear"  # or "center-crop"
    size: int = 224
    quantize: str = "uint8"
    feature: str = "i3d-kinetics400-logits-400d-mean-over-time"
    covariance: str = "biased"  # or "unbiased"
    sqrt: str = "scipy"  # or "svd"

    def to_dict(self) -> dict:
        return asdict(self)


def preprocess_for_i3d(video: torch.Tensor, protocol: FVDProtocol) -> torch.Tensor:
    """(B, 3, T, H, W) in [-1, 1] -> (B, 3, num_frames, size, size) in [-1, 1], the same way
    for real and generated videos: first ``num_frames`` frames, uint8 quantisation, resize."""
    if video.ndim != 5 or video.shape[1] != 3:
        raise ValueError(f"expected videos (B, 3, T, H, W), got {tuple(video.shape)}")
    t = video.shape[2]
    if t < MIN_FRAMES:
        raise ValueError(
            f"FVD needs at least {MIN_FRAMES} frames per video (I3D's temporal pooling), got {t}"
        )
    video = video[:, :, : protocol.num_frames]
    pixels = ((video.float().clamp(-1, 1) + 1) * 127.5).round()  # uint8 values, as floats
    b, c, t, h, w = pixels.shape
    frames = pixels.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    size = protocol.size
    if protocol.resize == "bilinear":
        frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)
    elif protocol.resize == "center-crop":
        scale = size / min(h, w)
        new = (max(size, round(h * scale)), max(size, round(w * scale)))
        frames = F.interpolate(frames, size=new, mode="bilinear", align_corners=False)
        top, left = (new[0] - size) // 2, (new[1] - size) // 2
        frames = frames[:, :, top : top + size, left : left + size]
    else:
        raise ValueError(f"resize must be 'bilinear' or 'center-crop', got {protocol.resize!r}")
    frames = frames.reshape(b, t, c, size, size).permute(0, 2, 1, 3, 4)
    return frames / 127.5 - 1


@torch.no_grad()
def i3d_stats(
    i3d, videos: Iterable[torch.Tensor], protocol: FVDProtocol, limit: int, device="cpu"
) -> FeatureStats:
    """Feature statistics of up to ``limit`` videos from an iterable of (B, 3, T, H, W) batches."""
    stats, seen = None, 0
    i3d = i3d.to(device).eval()
    for batch in videos:
        batch = batch[: limit - seen]
        features = i3d(preprocess_for_i3d(batch, protocol).to(device)).double().cpu()
        if stats is None:
            stats = FeatureStats(features.shape[1])
        stats.update(features)
        seen += batch.shape[0]
        if seen >= limit:
            break
    if stats is None or stats.count < 2:
        raise ValueError("FVD needs at least 2 videos on each side")
    return stats


def compute_fvd(
    i3d,
    real: Iterable[torch.Tensor],
    generated: Iterable[torch.Tensor],
    protocol: FVDProtocol | None = None,
    device="cpu",
) -> dict:
    """FVD between two streams of video batches; the result records the protocol and the
    number of videos actually used on each side."""
    protocol = protocol or FVDProtocol()
    a = i3d_stats(i3d, real, protocol, protocol.num_real, device)
    b = i3d_stats(i3d, generated, protocol, protocol.num_generated, device)
    value = frechet_distance_from_stats(
        a, b, unbiased=protocol.covariance == "unbiased", sqrt=protocol.sqrt
    )
    return {
        "fvd": value,
        "num_real_used": a.count,
        "num_generated_used": b.count,
        "protocol": protocol.to_dict(),
    }


def source_batches(
    source: str,
    num_videos: int,
    num_frames: int,
    size: int,
    batch_size: int,
    seed: int = 0,
    frame_stride: int = 1,
):
    """Batches (B, 3, T, H, W) in [-1, 1] of ``num_videos`` videos of a source, read the
    evaluation way (held-out seed / center crop) at ``size``×``size``, ``frame_stride`` frames
    apart (use the model's own): "moving-shapes", a video folder, a CSV/JSONL list, or a
    ``cmdvideo sample`` output folder. A set larger than ``num_videos`` is sampled at random
    (seeded) over all of it."""
    from ..config import DataConfig
    from ..data import build_dataset, iter_batches, sample_indices

    config = DataConfig(source=source, num_frames=num_frames, height=size, width=size,
                        frame_stride=frame_stride)  # fmt: skip
    dataset = build_dataset(config, train=False)
    chosen = sample_indices(len(dataset), num_videos, seed)
    for batch in iter_batches(dataset, batch_size=batch_size, indices=chosen):
        yield batch["video"]

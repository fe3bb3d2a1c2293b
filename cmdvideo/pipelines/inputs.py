"""The pipeline's inputs: images and videos in any of the layouts users have — a file path,
PIL images, numpy arrays (H, W, 3) / (T, H, W, 3) uint8 or float in [0, 1], torch tensors
(3, H, W) / (T, 3, H, W) in [0, 1] (what the pipeline's ``output_type="pt"`` gives), each
optionally batched — center-cropped to the model's aspect and resized to its frame size; and
how one condition is matched to many inputs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from ..data.video_io import read_video
from .arguments import IMAGE_SUFFIXES, check_alpha, image_array

logger = logging.getLogger(__name__)


def _resize_crop(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> (N, 3, *size): center crop to the aspect, then resize."""
    h, w = frames.shape[-2:]
    th, tw = size
    if h * tw > w * th:  # too tall
        ch, cw = max(1, round(w * th / tw)), w
    else:
        ch, cw = h, max(1, round(h * tw / th))
    top, left = (h - ch) // 2, (w - cw) // 2
    frames = frames[..., top : top + ch, left : left + cw]
    if (ch, cw) == (th, tw):
        return frames
    return F.interpolate(frames, size=size, mode="bilinear", antialias=True, align_corners=False)


def _to_unit_float(array, what: str) -> torch.Tensor:
    """numpy / torch -> float tensor in [0, 1] (uint8 divided by 255)."""
    tensor = torch.from_numpy(np.array(array)) if not torch.is_tensor(array) else array
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    if not tensor.is_floating_point():
        raise ValueError(f"{what}: expected uint8 or float values, got {tensor.dtype}")
    tensor = tensor.detach().float().cpu()
    if tensor.numel() and (tensor.min() < -1e-3 or tensor.max() > 1 + 1e-3):
        raise ValueError(
            f"{what}: float values must be in [0, 1] (got [{tensor.min():.3g}, "
            f"{tensor.max():.3g}]); give uint8 for [0, 255]"
        )
    return tensor.clamp(0, 1)


def _channels_first(frames: torch.Tensor, what: str) -> torch.Tensor:
    """(..., H, W, C) or (..., C, H, W) with C in 1, 3, 4 -> (..., 3, H, W) RGB."""
    if frames.shape[-1] in (1, 3, 4) and frames.shape[-3] not in (1, 3, 4):
        frames = frames.movedim(-1, -3)
    elif frames.shape[-3] not in (1, 3, 4):
        raise ValueError(
            f"{what}: expected 1 (grey), 3 (RGB) or 4 (RGBA) channels, got shape "
            f"{tuple(frames.shape)}"
        )
    c = frames.shape[-3]
    if c == 4:  # flattened onto white, as a browser shows it; all transparent: nothing to show
        rgb, alpha = frames[..., :3, :, :], frames[..., 3:, :, :]
        transparent = check_alpha(what, alpha, f"the {what}")
        if transparent:
            logger.warning(
                "%s: %.0f %% of its pixels are (partly) transparent; flattened onto white",
                what,
                100 * transparent,
            )
        frames = rgb * alpha + (1 - alpha)
    elif c == 1:
        frames = frames.expand(*frames.shape[:-3], 3, *frames.shape[-2:])
    return frames


def _pil_to_array(image) -> np.ndarray:
    return image_array(image)  # (H, W, 3), or (H, W, 4) with transparency


def prepare_image(image, size: tuple[int, int]) -> torch.Tensor:
    """An image or a batch of images (see the module's docstring) -> (B, 3, *size) in [-1, 1].

    Raises:
        ValueError: an unreadable file, an unsupported layout or value range.
    """

    if isinstance(image, (str, Path)):
        try:
            with Image.open(image) as opened:
                image = _pil_to_array(opened)
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"image {image}: not an image file PIL can read ({err})") from None
    if isinstance(image, Image.Image):
        image = _pil_to_array(image)
    if isinstance(image, (list, tuple)):
        return torch.cat([prepare_image(i, size) for i in image])
    frames = _to_unit_float(image, "image")
    if frames.ndim == 2:
        frames = frames[None]  # grey (H, W)
    if frames.ndim not in (3, 4):
        raise ValueError(
            f"image: expected (H, W, C), (C, H, W) or a batch of those, got shape "
            f"{tuple(frames.shape)}"
        )
    frames = _channels_first(frames, "image")
    if frames.ndim == 3:
        frames = frames[None]
    return _resize_crop(frames, size) * 2 - 1


def prepare_video(video, size: tuple[int, int], num_frames: int | None = None) -> torch.Tensor:
    """A video or a batch of videos (see the module's docstring) -> (B, 3, T, *size) in [-1, 1];
    a file is read with the project's reader (its first ``num_frames`` frames, else all).

    Raises:
        ValueError: an unsupported layout, a video shorter than ``num_frames``.
        VideoReadError: a file that cannot be decoded (its reason).
    """

    if isinstance(video, (str, Path)):
        video = read_video(video, num_frames=num_frames, start=0 if num_frames else None)
    if isinstance(video, (list, tuple)):
        if (
            video
            and not isinstance(video[0], (list, tuple, str, Path))
            and not (hasattr(video[0], "ndim") and video[0].ndim >= 4)
        ):  # a list of frames (e.g. PIL images) is one video
            video = np.stack([_pil_to_array(f) if hasattr(f, "convert") else f for f in video])
        else:
            return torch.cat([prepare_video(v, size, num_frames) for v in video])
    frames = _to_unit_float(video, "video")
    if frames.ndim not in (4, 5):
        raise ValueError(
            f"video: expected (T, H, W, C), (T, C, H, W) or a batch of those, got shape "
            f"{tuple(frames.shape)}"
        )
    frames = _channels_first(frames, "video")
    if frames.ndim == 4:
        frames = frames[None]
    b, t = frames.shape[:2]
    if num_frames is not None:
        if t < num_frames:
            raise ValueError(f"video: {t} frames, fewer than the {num_frames} needed")
        frames, t = frames[:, :num_frames], num_frames
    frames = _resize_crop(frames.flatten(0, 1), size).unflatten(0, (b, t))
    return frames.permute(0, 2, 1, 3, 4) * 2 - 1  # (B, 3, T, H, W)


def is_image(x) -> bool:
    """Whether an input is one image (an image file, PIL image, (H, W, C) array, (C, H, W)
    tensor) rather than a video."""
    if isinstance(x, (str, Path)):
        return Path(x).suffix.lower() in IMAGE_SUFFIXES
    if hasattr(x, "convert") and hasattr(x, "size"):  # PIL
        return True
    return hasattr(x, "ndim") and x.ndim in (2, 3)


def broadcast(tensor: torch.Tensor, n: int, what: str) -> torch.Tensor:
    """A batch of 1 or n items -> n items."""
    if tensor.shape[0] == n:
        return tensor
    if tensor.shape[0] == 1:
        return tensor.expand(n, *tensor.shape[1:])
    raise ValueError(f"{tensor.shape[0]} {what} for {n} prompts / class labels; give 1 or {n}")


def match_conditions(prompts, labels, n: int, count: int):
    """One condition for many inputs is repeated for each: (prompts, labels, n)."""
    if n == 1 and count > 1:
        prompts = prompts * count if prompts is not None else None
        labels = labels.expand(count) if labels is not None else None
        n = count
    return prompts, labels, n


def repeat_each(prompts, labels, k: int):
    """Each prompt and label ``k`` times in a row (the videos of one condition side by side)."""
    labels = labels.repeat_interleave(k) if labels is not None else None
    return ([p for p in prompts for _ in range(k)] if prompts is not None else None), labels


def pair_with_conditions(inputs: torch.Tensor, prompts, labels, n: int, what: str, k: int = 1):
    """Given inputs (e.g. content frames) and ``n`` conditions paired one to one: one condition
    for many inputs is repeated, one input for many conditions broadcast; then each pair ``k``
    times in a row, as :func:`repeat_each`. Returns (inputs, prompts, labels)."""
    prompts, labels, n = match_conditions(prompts, labels, n, inputs.shape[0])
    inputs = broadcast(inputs, n, what)
    if k > 1:
        inputs = inputs.repeat_interleave(k, dim=0)
        prompts, labels = repeat_each(prompts, labels, k)
    return inputs, prompts, labels

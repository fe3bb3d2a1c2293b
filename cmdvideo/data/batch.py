"""What the datasets give and what a training step reads: the keys of an item / batch, the
three kinds of batch, and the small protocols the datasets' extra abilities are asked through.

Every dataset's item is a dict with some of :class:`Batch`'s keys; `collate_videos` stacks them.
Which of the three sources a batch came from decides how a stage gets its model-space tensors,
and that is asked in one place, :func:`batch_source`.
"""

from __future__ import annotations

import random
from typing import Literal, Protocol, TypedDict, runtime_checkable

import torch
from torch.utils.data import ConcatDataset, Dataset


class Batch(TypedDict, total=False):
    """An item (unbatched shapes) or a collated batch (a leading B) of any dataset."""

    video: torch.Tensor  # (B, 3, T, H, W) in [-1, 1]: moving-shapes, video folders
    frames: torch.Tensor  # (B, C, T, h, w): the frame VAE's latents (a frame cache)
    content: torch.Tensor  # (B, C, h, w): content frames (a latent cache)
    motion: torch.Tensor  # (B, D_m, T, h + w): scaled motion latents (a latent cache)
    label: torch.Tensor  # (B,) long: motion class, -1 where a folder has no class
    caption: list[str]
    factors: list[dict]  # moving-shapes' VideoFactors, what the swap loss re-renders from
    centres: torch.Tensor  # moving-shapes: (B, T, 2) the first shape's centre per frame
    index: torch.Tensor  # (B,) long: the items' indices in their dataset
    path: list[str]  # video folders: the file each clip was read from
    skipped: list[list[tuple[str, str]]]  # video folders: (path, reason) of unreadable files


class VideoDataset(Dataset):
    """What every dataset of the project says about itself; a dataset overrides what it knows."""

    classes: tuple[str, ...] | list[str] = ()  # motion class names (label i is classes[i])
    part: str = "all"  # of its source: "training", "held-out" or "all" (`data.split_of`)
    world: str | None = None  # moving-shapes' world ("upright" / "random"); None for real videos
    motion_scaling_factor: float | None = None  # a latent cache: the scale its motion has

    def skip_counts(self) -> dict[str, int]:
        """Unreadable files met so far, by reason (video folders)."""
        return {}

    def describe(self, index: int) -> str:
        """Where item ``index`` comes from, for messages (a video folder names the file)."""
        return f"item {int(index)} of {type(self).__name__}"


class EpochIndex(int):
    """A dataset index that carries the epoch it was drawn for.

    The training sampler yields these, so a dataset whose random clips depend on the epoch
    (:class:`Epochal`) reads it from the index: persistent DataLoader workers hold copies of the
    dataset made when they started and never see a ``set_epoch`` called in the main process.
    Anything that does arithmetic on the index gets a plain ``int`` (and the dataset's own epoch).
    """

    epoch: int

    def __new__(cls, index: int, epoch: int) -> EpochIndex:
        value = super().__new__(cls, index)
        value.epoch = epoch
        return value

    def __reduce__(self):  # to worker processes and back, epoch included
        return EpochIndex, (int(self), self.epoch)

    def __repr__(self) -> str:
        return f"EpochIndex({int(self)}, epoch={self.epoch})"


class ConcatVideos(ConcatDataset, VideoDataset):
    """Datasets read one after the other, with the classes of the first."""

    def __init__(self, datasets: list[VideoDataset]):
        super().__init__(datasets)
        self.classes = datasets[0].classes


BatchSource = Literal["videos", "frames", "latents"]


def batch_source(batch: Batch) -> BatchSource:
    """ "latents": (content frame, motion latent) pairs of ``cmdvideo cache``; "frames": the frame
    VAE's latents of ``cmdvideo cache --frames``; "videos": pixels (moving-shapes, folders)."""
    if "motion" in batch:
        return "latents"
    if "frames" in batch:
        return "frames"
    if "video" in batch:
        return "videos"
    raise ValueError(f"a batch with neither videos, frames nor latents (keys {sorted(batch)})")


def collate_videos(items: list[dict]) -> Batch:
    """Stack tensors (``video``, ``frames``, ``content``, ``motion``) and the integer fields;
    keep everything else as lists."""
    batch: dict = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if torch.is_tensor(values[0]):
            batch[key] = torch.stack(values)
        elif key in ("label", "index"):
            batch[key] = torch.tensor(values, dtype=torch.long)
        else:
            batch[key] = values
    return batch  # type: ignore[return-value]


@runtime_checkable
class Captioned(Protocol):
    """A dataset that lists its captions without decoding a video (the text vocabulary)."""

    def captions(self, limit: int | None = None) -> list[str]: ...


@runtime_checkable
class FileSplittable(Protocol):
    """A dataset of files (video folders, CSV / JSONL indexes): held-out files are set aside."""

    samples: list

    def split_files(self, heldout: float): ...

    def evaluation_view(self, clips_per_video: int | None = None): ...


@runtime_checkable
class ItemSplittable(Protocol):
    """A latent cache: it knows which of its items its autoencoder's run held out."""

    def split_items(self): ...


@runtime_checkable
class Epochal(Protocol):
    """A dataset whose random crops are drawn per epoch (set here, or carried by an
    :class:`EpochIndex`)."""

    def set_epoch(self, epoch: int) -> None: ...


def iter_batches(
    dataset, num_videos: int | None = None, batch_size: int = 16, start: int = 0, indices=None
):
    """Collated batches of ``dataset[start : start + num_videos]`` (all of it when None), in
    order, ``batch_size`` items each (the last one may be smaller): what evaluation, caching
    and calibration read. ``indices``: read these items instead (e.g. a random sample)."""
    if indices is None:
        stop = len(dataset) if num_videos is None else min(len(dataset), start + num_videos)
        indices = range(start, stop)
    indices = list(indices)
    for first in range(0, len(indices), batch_size):
        yield collate_videos([dataset[i] for i in indices[first : first + batch_size]])


def sample_indices(length: int, num: int, seed: int = 0) -> list[int]:
    """``num`` distinct item indices drawn at random (seeded) from ``range(length)``, sorted:
    a sample of the whole set (the first N files of a sorted folder are a few classes)."""
    if num >= length:
        return list(range(length))
    return sorted(random.Random(seed).sample(range(length), num))


def take_batch(dataset, n: int, start: int = 0) -> dict:
    """One collated batch of items ``start .. start + n - 1`` (fewer if the dataset is shorter)."""
    n = min(n, len(dataset) - start)
    if n < 1:
        raise ValueError(f"the dataset has {len(dataset)} items; nothing to take from {start}")
    return next(iter_batches(dataset, n, n, start))

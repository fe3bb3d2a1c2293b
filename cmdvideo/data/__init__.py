"""Video data: the embedded moving-shapes dataset, folders of real videos, and video I/O."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

EMBEDDED_DATASETS = ("moving-shapes",)


def collate_videos(items: list[dict]) -> dict:
    """Stack "video" (B, C, T, H, W) and integer fields; keep everything else as lists."""
    batch: dict = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if torch.is_tensor(values[0]):
            batch[key] = torch.stack(values)
        elif key in ("label", "index"):
            batch[key] = torch.tensor(values, dtype=torch.long)
        else:
            batch[key] = values
    return batch


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
    import random

    if num >= length:
        return list(range(length))
    return sorted(random.Random(seed).sample(range(length), num))


def take_batch(dataset, n: int, start: int = 0) -> dict:
    """One collated batch of items ``start .. start + n - 1`` (fewer if the dataset is shorter)."""
    n = min(n, len(dataset) - start)
    if n < 1:
        raise ValueError(f"the dataset has {len(dataset)} items; nothing to take from {start}")
    return next(iter_batches(dataset, n, n, start))


def build_dataset(data_config, train: bool = True, source: str | None = None) -> Dataset:
    """The dataset a config describes.

    Args:
        data_config: a :class:`cmdvideo.config.DataConfig`.
        train: training split (moving-shapes: ``seed``; folders: random crops) or held-out
            evaluation split (moving-shapes: ``eval_seed``; folders: center crops).
        source: overrides ``data_config.source`` ("moving-shapes", a folder / CSV / JSONL, or
            a latent cache folder written by ``cmdvideo cache``).
    """
    cfg = data_config
    source = source or cfg.source
    if source == "moving-shapes":
        from .moving_shapes import MovingShapes

        return MovingShapes(
            num_videos=cfg.num_videos,
            num_frames=cfg.num_frames,
            height=cfg.height,
            width=cfg.width,
            seed=cfg.seed if train else cfg.eval_seed,
            max_shapes=cfg.max_shapes,
            textured=cfg.textured,
            world=cfg.world,
        )
    from .latent_cache import LatentCache, is_latent_cache

    if is_latent_cache(source):
        return LatentCache(source)
    if not Path(source).exists():
        raise FileNotFoundError(
            f"data source {source!r} does not exist; give a folder of videos, a CSV/JSONL "
            f"index, or one of the embedded datasets {EMBEDDED_DATASETS}"
        )
    from .video_folder import VideoFolder

    return VideoFolder(
        source,
        num_frames=cfg.num_frames,
        height=cfg.height,
        width=cfg.width,
        frame_stride=cfg.frame_stride,
        train=train,
        seed=cfg.seed,
        decode_threads=cfg.decode_threads,
        clips_per_video=cfg.clips_per_video if train else cfg.eval_clips_per_video,
    )


def build_train_and_eval(data_config) -> tuple[Dataset, Dataset]:
    """Training set and its held-out view: moving-shapes with ``eval_seed``; for folders, the
    same files with center crops (scanned once, so bad files are reported once)."""
    train = build_dataset(data_config, train=True)
    if hasattr(train, "evaluation_view"):
        return train, train.evaluation_view(data_config.eval_clips_per_video)
    return train, build_dataset(data_config, train=False)


def dataset_captions(dataset, limit: int = 5_000) -> list[str]:
    """Captions of (up to ``limit``) training videos without decoding any video: what the
    built-in text encoder's vocabulary is made from."""
    if hasattr(dataset, "captions"):
        return dataset.captions(limit)
    raise ValueError(f"{type(dataset).__name__} has no captions for text conditioning")

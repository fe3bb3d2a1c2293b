"""Which dataset a data config names, and how its parts relate: building the training and
held-out sets (moving shapes, folders and indexes of real videos, caches), the split a dataset
is, the files training reads (held out of evaluation), a cache's order, and small helpers to
take batches and captions from any of them."""

from __future__ import annotations

import logging
from pathlib import Path

from torch.utils.data import Dataset

from .batch import Captioned, ConcatVideos, FileSplittable, ItemSplittable
from .latent_cache import LatentCache, is_latent_cache
from .moving_shapes import MovingShapes
from .video_folder import VideoFolder

logger = logging.getLogger(__name__)

EMBEDDED_DATASETS = ("moving-shapes",)


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
        dataset = MovingShapes(
            num_videos=cfg.num_videos,
            num_frames=cfg.num_frames,
            height=cfg.height,
            width=cfg.width,
            seed=cfg.seed if train else cfg.eval_seed,
            max_shapes=cfg.max_shapes,
            textured=cfg.textured,
            world=cfg.world,
            paths=cfg.paths,
        )
        dataset.part = "training" if train else "held-out"  # other seeds: other videos
        return dataset

    if is_latent_cache(source):
        return LatentCache(source)
    if not Path(source).exists():
        raise FileNotFoundError(
            f"data source {source!r} does not exist; give a folder of videos, a CSV/JSONL "
            f"index, or one of the embedded datasets {EMBEDDED_DATASETS}"
        )

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
    """Training set and its held-out part: moving-shapes with ``eval_seed``; for folders and
    indexes, the files :meth:`~cmdvideo.data.video_folder.VideoFolder.split_files` keeps out of
    training (``data.heldout_files``) with center crops, or the training files themselves
    when none is held out (a single file, or ``heldout_files`` 0; :func:`split_of` tells); for
    a latent cache, the items of the files its autoencoder run held out. Folders are scanned
    once, so bad files are reported once."""
    train = build_dataset(data_config, train=True)
    if isinstance(train, FileSplittable):  # a video folder or index
        train, heldout = train.split_files(data_config.heldout_files)
        if heldout is None:
            logger.info(
                "data: no file held out (%d usable, data.heldout_files=%s): previews and "
                "evaluation read training files",
                len(train.samples),
                data_config.heldout_files,
            )
        else:
            logger.info(
                "data: %d files for training, %d held out (data.heldout_files=%s) for previews "
                "and evaluation",
                len(train.samples),
                len(heldout.samples),
                data_config.heldout_files,
            )
        return train, (heldout or train).evaluation_view(data_config.eval_clips_per_video)
    if isinstance(train, ItemSplittable):  # a latent cache
        train, heldout = train.split_items()
        return train, heldout or train
    return train, build_dataset(data_config, train=False)


def split_of(dataset) -> str:
    """What part of its source a dataset is: "held-out" (moving-shapes' evaluation seed,
    held-out files or cache items), "training" (training files or items: evaluating on them
    is not a held-out measurement) or "all" (every file of a source, none set aside)."""
    return dataset.part


def evaluation_set(data_config, source: str | None = None) -> tuple[Dataset, dict]:
    """What to measure a trained run on, and what that is.

    Args:
        data_config: the run's data settings (its ``config.yaml``).
        source: other videos to measure on; None (or the run's own source): the run's
            held-out part (:func:`build_train_and_eval`).

    Returns:
        (dataset read the evaluation way, {"data": the source, "split": "held-out" (nothing
        in it was trained on), "training" (all of it was), "mixed" or "unchecked" (the run's
        training data is gone), "detail": one sentence saying so}).
    """
    own = source is None or _same_source(source, data_config.source)
    if own:
        source = data_config.source
        _, dataset = build_train_and_eval(data_config)
        split, files = split_of(dataset), _file_keys(dataset)
        if source == "moving-shapes":
            detail = f"held-out videos (eval_seed {data_config.eval_seed}), never trained on"
        elif split == "held-out":
            detail = f"{len(files)} held-out file{'s' * (len(files) != 1)}, never trained on"
        else:
            detail = (
                f"the {len(files)} TRAINING files: the run held none out (data.heldout_files="
                f"{data_config.heldout_files}); --data FOLDER of other videos measures held out"
            )
        return dataset, {"data": source, "split": split, "detail": detail}
    dataset = build_dataset(data_config, train=False, source=source)
    files, trained = _file_keys(dataset), _training_files(data_config)
    if files is None or trained is None:
        if data_config.source == "moving-shapes" or source == "moving-shapes":
            split, detail = "held-out", f"videos the run never trained on ({data_config.source})"
        else:
            split = "unchecked"
            detail = f"not checked against the run's training data ({data_config.source} is gone)"
    else:
        seen = sum(f in trained for f in files)
        split = "held-out" if seen == 0 else "training" if seen == len(files) else "mixed"
        detail = (
            f"{len(files)} files, none in the run's training data"
            if seen == 0
            else f"{len(files)} files, {seen} of them in the run's training data"
        )
    return dataset, {"data": source, "split": split, "detail": detail}


def _same_source(a: str, b: str) -> bool:
    if a == b:
        return True
    return Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve()


def _file_keys(dataset) -> list[tuple[str, int]] | None:
    """(name, bytes) of every file a folder/index dataset reads, so that a copy of a training
    file elsewhere still counts as that file (None for other datasets)."""
    samples = getattr(dataset, "samples", None)
    if samples is None:
        return None
    return [(Path(s[0]).name, Path(s[0]).stat().st_size) for s in samples]


def _training_files(data_config) -> set[tuple[str, int]] | None:
    """The files a run trained on, as :func:`_file_keys` (its source, split as in training);
    None when unknown (moving-shapes, a latent cache, a source that is gone)."""
    if data_config.source == "moving-shapes" or not Path(data_config.source).exists():
        return None

    if is_latent_cache(data_config.source):
        return None
    train, _ = build_train_and_eval(data_config)
    files = _file_keys(train)
    return None if files is None else set(files)


def cache_order(data_config) -> tuple[Dataset, int]:
    """What ``cmdvideo cache`` encodes and in which order: (dataset, number of held-out items
    at its end). Folders: the training files, then the held-out ones, center-cropped (a random
    crop would be frozen into the cache anyway); the cache records which are held out, so the
    diffusion stages keep them out of training as the autoencoder did. Other sources: as is."""
    train = build_dataset(data_config, train=True)
    if not isinstance(train, FileSplittable):
        return train, 0
    train, heldout = train.split_files(data_config.heldout_files)
    clips = data_config.eval_clips_per_video
    parts = [train.evaluation_view(clips)] + ([heldout.evaluation_view(clips)] if heldout else [])
    if len(parts) == 1:
        return parts[0], 0
    return ConcatVideos(parts), len(parts[1])


def dataset_captions(dataset, limit: int = 5_000) -> list[str]:
    """Captions of (up to ``limit``) training videos without decoding any video: what the
    built-in text encoder's vocabulary is made from."""
    if isinstance(dataset, Captioned):
        return dataset.captions(limit)
    raise ValueError(f"{type(dataset).__name__} has no captions for text conditioning")

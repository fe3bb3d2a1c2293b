"""Video data: the embedded moving-shapes dataset, folders of real videos, caches, and video
I/O. This package's own names: what a batch is (`batch`) and which dataset a config names
(`sources`)."""

from .batch import (
    Batch,
    Captioned,
    ConcatVideos,
    Epochal,
    FileSplittable,
    ItemSplittable,
    VideoDataset,
    batch_source,
    collate_videos,
    iter_batches,
    sample_indices,
    take_batch,
)
from .sources import (
    EMBEDDED_DATASETS,
    build_dataset,
    build_train_and_eval,
    cache_order,
    dataset_captions,
    evaluation_set,
    split_of,
)

__all__ = [
    "Batch",
    "Captioned",
    "ConcatVideos",
    "EMBEDDED_DATASETS",
    "Epochal",
    "FileSplittable",
    "ItemSplittable",
    "VideoDataset",
    "batch_source",
    "build_dataset",
    "build_train_and_eval",
    "cache_order",
    "collate_videos",
    "dataset_captions",
    "evaluation_set",
    "iter_batches",
    "sample_indices",
    "split_of",
    "take_batch",
]

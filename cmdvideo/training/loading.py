"""The training loader: the epoch order, worker processes that live for the whole run, and a
wait for batches that ends in an error naming the files instead of hanging.

Why workers are safe to fork here (docs/training.md#data-loader-workers): nothing a dataset of
this package uses survives from the parent into a worker. Video frames are converted by a
converter each process makes for itself (``cmdvideo.data.video_io``), latent-cache files are
reopened per process (``LatentCache``), moving shapes are rendered in NumPy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data import collate_videos
from ..data.batch import EpochIndex


class EpochShuffleSampler(Sampler[int]):
    """A permutation per epoch from ``(seed, epoch)`` only, so a resumed run sees the same order.

    The trainer assigns ``epoch`` itself. There is deliberately no ``set_epoch`` method:
    Accelerate calls that with its own per-DataLoader-object iteration count, which restarts at
    0 for the fresh loader ``skip_first_batches`` makes on resume and would replay epoch 0.
    """

    def __init__(self, length: int, seed: int, shuffle: bool = True):
        self.length, self.seed, self.shuffle, self.epoch = length, seed, shuffle, 0

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        """This epoch's indices as :class:`~cmdvideo.data.batch.EpochIndex`: the epoch travels
        with each index to the workers, which live across epochs."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = range(self.length)
        return (EpochIndex(i, self.epoch) for i in order)


class LoaderTimeout(RuntimeError):
    """No batch came from the loader's workers within ``data.loader_timeout`` seconds."""


def training_loader(dataset: Dataset, sampler: Sampler, batch_size: int, data_config) -> DataLoader:
    """The loader of a training run: ``data.num_workers`` workers started by
    ``data.worker_start_method``, kept for the whole run (persistent: an epoch does not restart
    them; the epoch reaches them with each index), a ``data.loader_timeout``, and a generator
    of its own for the seeds its iterators draw.
    """
    workers = data_config.num_workers
    if workers < 0:
        raise ValueError(f"data.num_workers must be >= 0, got {workers}")
    if data_config.loader_timeout < 0:
        raise ValueError(
            f"data.loader_timeout is seconds to wait for a batch (0: no limit), got "
            f"{data_config.loader_timeout}"
        )
    in_workers = {}
    if workers > 0:
        in_workers = {
            "persistent_workers": True,
            "multiprocessing_context": data_config.worker_start_method,
            "timeout": data_config.loader_timeout,
        }
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=True,
        collate_fn=collate_videos,
        num_workers=workers,
        # Every iterator of a loader draws a seed (for its workers): from a generator of its
        # own, not the global RNG the training step draws noise from, so that a run resumed
        # mid-epoch (a new, skipping loader) draws the same noise as one never interrupted.
        generator=torch.Generator().manual_seed(data_config.seed),
        **in_workers,
    )


def batches_in_time(
    batches: Iterable, loader: DataLoader, dataset: Dataset, first: int, timeout: float
) -> Iterator:
    """Yield ``batches`` (``loader``'s, perhaps past ``first`` skipped ones); when the workers
    time out, raise :class:`LoaderTimeout` naming what the missing batch reads.

    Batches come in order, so the one waited for is number ``first`` + (batches received):
    its items are read off ``loader.batch_sampler`` (this process's share under Accelerate),
    which is a pure function of the epoch.
    """
    number = first
    iterator = iter(batches)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except RuntimeError as e:
            if "DataLoader timed out" not in str(e):
                raise
            raise LoaderTimeout(_timeout_message(loader, dataset, number, timeout)) from e
        yield batch
        number += 1


def _timeout_message(loader: DataLoader, dataset: Dataset, number: int, timeout: float) -> str:
    indices = next(islice(iter(loader.batch_sampler), number, None), [])
    describe = getattr(dataset, "describe", lambda i: f"item {int(i)}")
    files = ", ".join(dict.fromkeys(describe(i) for i in indices)) or "unknown items"
    return (
        f"no batch from the {loader.num_workers} data-loader workers in {timeout:g} s "
        f"(data.loader_timeout): batch {number} of this epoch reads {files}. A file that hangs "
        "its decoder, or a stuck worker: run with --set data.num_workers=0 to read in the "
        "training process and see the error there, or raise data.loader_timeout for slow storage."
    )

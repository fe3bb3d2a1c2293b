"""Latent caching: encode a dataset once with the frozen autoencoder and train the diffusion
stages from the stored (content frame, motion latent, class label, caption) tuples, skipping the
autoencoder (and, in latent mode, the image VAE) at every step.

Layout of a cache folder::

    CACHE/cache.json                      items, shards, captions, class names, autoencoder,
                                          scaling factor, shapes, held-out items (the last)
    CACHE/shard-r000-00000.safetensors    content (n, C, H, W), motion (n, D_m, T, h+w)
                                          (scaled: the diffusion models' space), label (n,);
                                          or, for the autoencoder (--frames), frames
                                          (n, C, T, h, w): the frame VAE's latents

Every process of a multi-process run (``torchrun ... cmdvideo cache``) encodes its own
contiguous part and writes its own shards; the main process joins the parts into
``cache.json`` once all are written. Reading maps the shards into memory (safetensors): items
are read when asked for, so no process holds the whole cache in RAM.

Videos are encoded once, with center crops for folders (random crops would be frozen into the
cache anyway); the motion scaling factor of the autoencoder is recorded and checked at training.
"""

from __future__ import annotations

import bisect
import copy
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from .batch import VideoDataset, batch_source, iter_batches

CACHE_INDEX = "cache.json"


def is_latent_cache(source: str | Path) -> bool:
    return (Path(source) / CACHE_INDEX).is_file()


def _part_file(out_dir: Path, rank: int) -> Path:
    return out_dir / f"part-{rank:03d}.json"


@torch.no_grad()
def write_latent_cache(
    codec,
    dataset: VideoDataset,
    out_dir: str | Path,
    num_videos: int | None = None,
    batch_size: int = 16,
    shard_size: int = 4096,
    device: str = "cpu",
    autoencoder: str = "",
    progress: bool = True,
    rank: int = 0,
    world_size: int = 1,
    barrier=None,
    frames: bool = False,
    heldout: int = 0,
) -> Path:
    """Encode the first ``num_videos`` (all by default) videos of ``dataset`` into ``out_dir``.

    Args:
        codec: a :class:`~cmdvideo.models.codec.VideoCodec` — or, with ``frames``, a
            :class:`~cmdvideo.models.codec.FrameVAE`.
        frames: store the frame VAE's latents of every frame, (n, C, T, h, w), what the CMD
            autoencoder trains on in latent mode (``train autoencoder --data CACHE`` then skips
            the VAE), instead of (content frame, motion latent) pairs.
        rank, world_size, barrier: this process's share of a multi-process run: process
            ``rank`` encodes items ``[rank·n/W, (rank+1)·n/W)``; ``barrier()`` waits for all
            (e.g. Accelerate's ``wait_for_everyone``), after which rank 0 writes the index.
        heldout: the last ``heldout`` of the encoded items come from files the autoencoder run
            held out (:func:`cmdvideo.data.cache_order`); training from the cache keeps them
            out too, and previews read them.
    """

    if not frames and codec.autoencoder.config.motion_scaling_factor is None:
        raise ValueError("calibrate the autoencoder first (`cmdvideo calibrate`)")
    n = len(dataset) if num_videos is None else min(num_videos, len(dataset))
    if n < 1:
        raise ValueError("nothing to cache: the dataset is empty")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    codec = codec.to(device).eval()
    first, stop = rank * n // world_size, (rank + 1) * n // world_size
    writer = _ShardWriter(out_dir, rank, ("frames",) if frames else ("content", "motion"))
    batches = iter_batches(dataset, stop - first, batch_size, start=first)
    total = -(-(stop - first) // batch_size)
    for batch in tqdm(batches, total=total, desc="encode", disable=not progress):
        if batch_source(batch) == "frames":  # a frame cache: the VAE's latents already there
            encoded = codec.encode_model_space(batch["frames"].to(device))
        else:
            video = batch["video"].to(device)
            encoded = (codec.encode(video),) if frames else codec.encode(video)
        writer.add(batch, encoded, shard_size)
    writer.finish()
    if barrier is not None:
        barrier()
    if rank == 0:
        scaling = None if frames else codec.autoencoder.config.motion_scaling_factor
        index = {
            "num_items": n,
            "kind": "frames" if frames else "pairs",
            **_merge_parts(out_dir, world_size, writer.keys),
            "classes": list(dataset.classes),
            "world": dataset.world,  # moving-shapes: which world
            "heldout_items": min(heldout, n),
            "autoencoder": str(autoencoder),
            "motion_scaling_factor": scaling,
        }
        (out_dir / CACHE_INDEX).write_text(json.dumps(index))
    if barrier is not None:
        barrier()
    return out_dir


class _ShardWriter:
    """One process's part of a cache: encoded batches gathered into safetensors shards of about
    ``shard_size`` items, and a part file listing them with the items' captions and factors."""

    def __init__(self, out_dir: Path, rank: int, keys: tuple[str, ...]):
        self.out_dir, self.rank, self.keys = out_dir, rank, keys
        self.shards, self.captions, self.factors, self.shapes = [], [], [], {}
        self.pending = {**{k: [] for k in keys}, "label": []}

    def add(self, batch: dict, encoded: tuple, shard_size: int) -> None:
        for key, value in zip(self.keys, encoded):
            self.pending[key].append(value.float().cpu())
            self.shapes[f"{key}_shape"] = list(value.shape[1:])
        self.pending["label"].append(batch["label"].long())
        self.captions += list(batch.get("caption", [""] * len(batch["label"])))
        self.factors += list(batch.get("factors", []))  # moving-shapes: what each video shows
        if sum(len(x) for x in self.pending["label"]) >= shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending["label"]:
            return
        name = f"shard-r{self.rank:03d}-{len(self.shards):05d}.safetensors"
        tensors = {k: torch.cat(v).contiguous() for k, v in self.pending.items()}
        save_file(tensors, self.out_dir / name)
        self.shards.append({"file": name, "count": len(tensors["label"])})
        for v in self.pending.values():
            v.clear()

    def finish(self) -> None:
        self.flush()
        part = {"shards": self.shards, "captions": self.captions, "factors": self.factors}
        _part_file(self.out_dir, self.rank).write_text(json.dumps({**part, **self.shapes}))


def _merge_parts(out_dir: Path, world_size: int, keys: tuple[str, ...]) -> dict:
    """The processes' part files as the index's shards, captions, factors (moving-shapes:
    swap-pair targets for the autoencoder, else empty) and item shapes; the parts removed."""
    parts = [json.loads(_part_file(out_dir, r).read_text()) for r in range(world_size)]
    lists = ("shards", "captions", "factors")
    merged = {key: [x for part in parts for x in part[key]] for key in lists}
    for k in keys:
        merged[f"{k}_shape"] = next(p[f"{k}_shape"] for p in parts if f"{k}_shape" in p)
    for r in range(world_size):
        _part_file(out_dir, r).unlink()
    return merged


class LatentCache(VideoDataset):
    """A cache folder as a dataset: items {"content", "motion"} (or {"frames"}) with "label",
    "caption", "index", read from memory-mapped shards on demand (labels and captions are
    loaded at once)."""

    def __init__(self, directory: str | Path):
        directory = Path(directory)
        if not is_latent_cache(directory):
            raise FileNotFoundError(f"{directory}/{CACHE_INDEX} not found: not a latent cache")
        self.index = json.loads((directory / CACHE_INDEX).read_text())
        self.files = [directory / shard["file"] for shard in self.index["shards"]]
        counts = [shard["count"] for shard in self.index["shards"]]
        self.starts = [sum(counts[:k]) for k in range(len(counts))]  # first item of each shard
        labels = []
        for path in self.files:
            with safe_open(path, framework="pt") as f:
                labels.append(f.get_tensor("label"))
        self.labels = torch.cat(labels)
        self._captions = self.index["captions"]
        self._factors = self.index.get("factors") or None
        self.classes = self.index["classes"]
        self.motion_scaling_factor = self.index["motion_scaling_factor"]
        self.world = self.index.get("world")  # the moving-shapes world it was encoded from
        # "pairs": content + motion (the diffusion stages); "frames": VAE latents (autoencoder)
        self.kind = self.index.get("kind", "pairs")
        self.keys = ("frames",) if self.kind == "frames" else ("content", "motion")
        self._handles: dict[int, object] = {}
        self._pid = None
        self._offset, self.part = 0, "all"  # a view of items [offset, offset + len)

    def __len__(self) -> int:
        return len(self.labels)

    def split_items(self) -> tuple[LatentCache, LatentCache | None]:
        """(training items, held-out items): the cache's last ``heldout_items`` come from files
        held out of training (see :func:`write_latent_cache`); None when there are none."""
        count = self.index.get("heldout_items", 0)
        if not count:
            return self, None
        stop = len(self.labels) - count
        return self._view(0, stop, "training"), self._view(stop, len(self.labels), "held-out")

    def _view(self, start: int, stop: int, part: str) -> LatentCache:

        view = copy.copy(self)
        view.labels, view._captions = self.labels[start:stop], self._captions[start:stop]
        if self._factors is not None:
            view._factors = self._factors[start:stop]
        view._offset, view.part, view._handles, view._pid = self._offset + start, part, {}, None
        return view

    def captions(self, limit: int | None = None) -> list[str]:
        return self._captions[:limit]

    def _shard(self, k: int):
        if self._pid != os.getpid():  # a fresh worker process: its own file handles
            self._handles, self._pid = {}, os.getpid()
        if k not in self._handles:
            self._handles[k] = safe_open(self.files[k], framework="pt")
        return self._handles[k]

    def __getstate__(self) -> dict:  # handles do not travel to worker processes
        return {**self.__dict__, "_handles": {}, "_pid": None}

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} of a cache of {len(self)}")
        item = index + self._offset  # in the whole cache
        k = bisect.bisect_right(self.starts, item) - 1
        shard, row = self._shard(k), item - self.starts[k]
        tensors = {key: shard.get_slice(key)[row : row + 1][0] for key in self.keys}
        item = {
            **tensors,
            "label": int(self.labels[index]),
            "caption": self._captions[index],
            "index": index,
        }
        if self._factors is not None and len(self._factors) == len(self):
            item["factors"] = self._factors[index]
        return item

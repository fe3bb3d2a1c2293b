"""Latent caching: encode a dataset once with the frozen autoencoder and train the diffusion
stages from the stored (content frame, motion latent, class label, caption) tuples, skipping the
autoencoder (and, in latent mode, the image VAE) at every step.

Layout of a cache folder::

    CACHE/cache.json              items, shards, captions, class names, autoencoder, scaling
    CACHE/shard-00000.safetensors content (n, C, H, W), motion (n, D_m, T, h+w) (scaled, the
                                  diffusion models' space), label (n,)

Videos are encoded once, with center crops for folders (random crops would be frozen into the
cache anyway); the motion scaling factor of the autoencoder is recorded and checked at training.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset
from tqdm.auto import tqdm

CACHE_INDEX = "cache.json"


def is_latent_cache(source: str | Path) -> bool:
    return (Path(source) / CACHE_INDEX).is_file()


@torch.no_grad()
def write_latent_cache(
    codec,
    dataset: Dataset,
    out_dir: str | Path,
    num_videos: int | None = None,
    batch_size: int = 16,
    shard_size: int = 4096,
    device: str = "cpu",
    autoencoder: str = "",
    progress: bool = True,
) -> Path:
    """Encode the first ``num_videos`` (all by default) videos of ``dataset`` into ``out_dir``."""
    from . import iter_batches

    if codec.autoencoder.config.motion_scaling_factor is None:
        raise ValueError("calibrate the autoencoder first (`cmdvideo calibrate`)")
    n = len(dataset) if num_videos is None else min(num_videos, len(dataset))
    if n < 1:
        raise ValueError("nothing to cache: the dataset is empty")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    codec = codec.to(device).eval()
    shards, captions, pending = [], [], {"content": [], "motion": [], "label": []}

    def flush():
        if not pending["label"]:
            return
        name = f"shard-{len(shards):05d}.safetensors"
        tensors = {k: torch.cat(v).contiguous() for k, v in pending.items()}
        save_file(tensors, out_dir / name)
        shards.append({"file": name, "count": len(tensors["label"])})
        for v in pending.values():
            v.clear()

    batches = iter_batches(dataset, n, batch_size)
    for batch in tqdm(batches, total=-(-n // batch_size), desc="encode", disable=not progress):
        content, motion = codec.encode(batch["video"].to(device))
        pending["content"].append(content.float().cpu())
        pending["motion"].append(motion.float().cpu())
        pending["label"].append(batch["label"].long())
        captions += list(batch.get("caption", [""] * len(batch["label"])))
        if sum(len(x) for x in pending["label"]) >= shard_size:
            flush()
    flush()
    index = {
        "num_items": n,
        "shards": shards,
        "captions": captions,
        "classes": list(getattr(dataset, "classes", [])),
        "autoencoder": str(autoencoder),
        "motion_scaling_factor": codec.autoencoder.config.motion_scaling_factor,
        "content_shape": list(content.shape[1:]),
        "motion_shape": list(motion.shape[1:]),
    }
    (out_dir / CACHE_INDEX).write_text(json.dumps(index))
    return out_dir


class LatentCache(Dataset):
    """A cache folder as a dataset: items {"content", "motion", "label", "caption", "index"}."""

    def __init__(self, directory: str | Path):
        directory = Path(directory)
        if not is_latent_cache(directory):
            raise FileNotFoundError(f"{directory}/{CACHE_INDEX} not found: not a latent cache")
        self.index = json.loads((directory / CACHE_INDEX).read_text())
        parts = [load_file(directory / shard["file"]) for shard in self.index["shards"]]
        self.content = torch.cat([p["content"] for p in parts])
        self.motion = torch.cat([p["motion"] for p in parts])
        self.labels = torch.cat([p["label"] for p in parts])
        self._captions = self.index["captions"]
        self.classes = self.index["classes"]
        self.motion_scaling_factor = self.index["motion_scaling_factor"]

    def __len__(self) -> int:
        return len(self.labels)

    def captions(self, limit: int | None = None) -> list[str]:
        return self._captions[:limit]

    def __getitem__(self, index: int) -> dict:
        return {
            "content": self.content[index],
            "motion": self.motion[index],
            "label": int(self.labels[index]),
            "caption": self._captions[index],
            "index": index,
        }

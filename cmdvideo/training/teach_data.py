"""What ``cmdvideo teach`` learns from: the user's captioned clips and the base's own world, in
the spaces the denoisers work in (the base autoencoder's encodings), and the new words the
captions bring."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import iter_batches
from ..data.batch import VideoDataset
from ..data.moving_shapes import MovingShapes
from ..data.video_folder import VideoFolder
from ..models.text import WordTextEncoder, words
from ..pipelines.adapters import ENCODERS

logger = logging.getLogger(__name__)

INDEX_SUFFIXES = (".jsonl", ".csv")


@dataclass
class Latents:
    """Clips in the spaces the denoisers work in (the base autoencoder's encodings)."""

    content: torch.Tensor  # (N, C, H, W) content frames
    motion: torch.Tensor  # (N, D_m, T, L) scaled motion latents
    captions: list[str]
    labels: torch.Tensor  # (N,) long: motion class, -1 where none

    def __len__(self) -> int:
        return len(self.captions)


class TeachingSet(VideoDataset):
    """Every clip once per epoch, and as many of the base's world items (``prior``) as make
    ``prior_fraction`` of the set, a different slice of the world each epoch."""

    def __init__(self, clips: Latents, prior: Latents | None, prior_fraction: float):
        self.clips, self.prior = clips, prior
        self.num_prior = 0
        if prior is not None and len(prior) and prior_fraction > 0:
            self.num_prior = round(len(clips) * prior_fraction / (1 - prior_fraction))

    def __len__(self) -> int:
        return len(self.clips) + self.num_prior

    def __getitem__(self, index: int) -> dict:
        epoch = getattr(index, "epoch", 0)
        index = int(index)
        source, row, is_prior = self.clips, index, False
        if index >= len(self.clips):
            source, is_prior = self.prior, True
            row = (epoch * self.num_prior + index - len(self.clips)) % len(self.prior)
        return {
            "content": source.content[row],
            "motion": source.motion[row],
            "caption": source.captions[row],
            "label": int(source.labels[row]),
            "prior": torch.tensor(is_prior),
            "index": index,
        }


def teaching_source(data: str | Path) -> Path:
    """``--data`` as a source of captioned clips: a CSV/JSONL index, a folder holding exactly
    one index, or a folder of clips with a ``.txt`` caption beside each."""
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"--data {path} does not exist; give an index or a folder of clips")
    if path.is_dir():
        indexes = sorted(p for p in path.iterdir() if p.suffix.lower() in INDEX_SUFFIXES)
        if len(indexes) == 1:
            return indexes[0]
    return path


def read_clips(data, pipe, clips_per_video: int, min_clips: int, seed: int = 0):
    """The captioned clips at the pipeline's frames and size (random starts and crops, each
    file ``clips_per_video`` times). Returns (dataset, skipped {path: reason})."""
    height, width = pipe.video_size()
    folder = VideoFolder(
        teaching_source(data),
        num_frames=int(pipe.config.num_frames),
        height=height,
        width=width,
        seed=seed,
        clips_per_video=clips_per_video,
    )
    uncaptioned = [path for path, caption, _, _ in folder.samples if not caption.strip()]
    if uncaptioned:
        raise ValueError(
            f"{len(uncaptioned)} clip(s) have no caption, e.g. {uncaptioned[0]}: teaching needs "
            "a caption per clip (an index with path and caption columns, or clip.txt beside "
            "clip.mp4)"
        )
    if len(folder.samples) < min_clips:
        raise ValueError(
            f"{len(folder.samples)} readable clip(s) under {data} (skipped: "
            f"{folder.skipped or 'none'}); teaching needs at least {min_clips} "
            "(teach.min_clips), better 8-16"
        )
    return folder, dict(folder.skipped)


def new_words(pipe, captions: list[str]) -> list[str]:
    """Words of the captions no word encoder of the pipeline knows (sorted).

    Raises:
        ValueError: the pipeline has no built-in word encoder, or the captions no new word.
    """
    encoders = word_encoders(pipe)
    if not encoders:
        raise ValueError(
            "teach learns new words in the pipeline's built-in word encoders; this pipeline's "
            "text encoders are pretrained ones (CLIP / sentence encoders)"
        )
    found = sorted(
        {w for c in captions for w in words(c) if not any(e.knows(w) for e in encoders.values())}
    )
    if not found:
        known = sorted(next(iter(encoders.values())).word_ids)
        raise ValueError(
            "the captions have no word the model does not know already; write the new look or "
            f"motion as a new word (e.g. 'a red star moving left'). It knows: {', '.join(known)}"
        )
    return found


def word_encoders(pipe) -> dict[str, WordTextEncoder]:
    """The pipeline's distinct built-in word encoders by component name."""
    found: dict[str, WordTextEncoder] = {}
    for name in ENCODERS:
        encoder = getattr(pipe, name, None)
        if isinstance(encoder, WordTextEncoder) and all(encoder is not e for e in found.values()):
            found[name] = encoder
    return found


@torch.no_grad()
def encode_clips(pipe, dataset, batch_size: int = 16) -> Latents:
    """Every item of ``dataset`` encoded by the pipeline's autoencoder."""
    content, motion, captions, labels = [], [], [], []
    for batch in iter_batches(dataset, batch_size=batch_size):
        c, m = pipe.codec.encode(batch["video"].to(pipe._pixel_dtype))
        content.append(c.float().cpu())
        motion.append(m.float().cpu())
        captions += list(batch["caption"])
        labels.append(batch["label"])
    return Latents(torch.cat(content), torch.cat(motion), captions, torch.cat(labels))


def world_prior(pipe, count: int, seed: int = 7) -> Latents | None:
    """``count`` videos of the world the base learned (moving shapes), encoded; None when the
    base did not learn moving shapes (then nothing is mixed in, with a warning)."""
    data = pipe.config.get("training_data") or {}
    if data.get("source") != "moving-shapes" or count < 1:
        logger.warning(
            "the base was not trained on moving shapes: no prior preservation (its other "
            "prompts may drift while teaching)"
        )
        return None
    height, width = pipe.video_size()
    world = MovingShapes(
        num_videos=count,
        num_frames=int(pipe.config.num_frames),
        height=height,
        width=width,
        seed=seed,
        world=data.get("world") or "upright",
    )
    return encode_clips(pipe, world)

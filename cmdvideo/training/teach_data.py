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
from ..data.moving_shapes import MovingShapes, appearance_phrases
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
    """What one epoch of teaching reads: every clip; every transferred clip (a clip's motion on
    other content, for the motion model only); and as many of the base's world items
    (``prior``) as make ``prior_fraction`` of the set, a different slice of the world each
    epoch. Items say which they are: ``prior`` and ``motion_only`` (B,) bool."""

    def __init__(
        self,
        clips: Latents,
        prior: Latents | None,
        prior_fraction: float,
        transferred: Latents | None = None,
    ):
        self.parts = [clips] + ([transferred] if transferred is not None else [])
        self.prior, self.num_prior = prior, 0
        taught = sum(len(part) for part in self.parts)
        if prior is not None and len(prior) and prior_fraction > 0:
            self.num_prior = round(taught * prior_fraction / (1 - prior_fraction))

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts) + self.num_prior

    def __getitem__(self, index: int) -> dict:
        epoch = getattr(index, "epoch", 0)
        index = row = int(index)
        for k, part in enumerate(self.parts):
            if row < len(part):
                return self._item(part, row, index, prior=False, motion_only=k == 1)
            row -= len(part)
        row = (epoch * self.num_prior + row) % len(self.prior)
        return self._item(self.prior, row, index, prior=True, motion_only=False)

    @staticmethod
    def _item(source: Latents, row: int, index: int, prior: bool, motion_only: bool) -> dict:
        return {
            "content": source.content[row],
            "motion": source.motion[row],
            "caption": source.captions[row],
            "label": int(source.labels[row]),
            "prior": torch.tensor(prior),
            "motion_only": torch.tensor(motion_only),
            "index": index,
        }


@dataclass
class Contents:
    """Content frames to put a taught motion on, and how a caption names each one's look
    (``f"{subject} ... on {background}"``; None: keep the clip's caption)."""

    frames: torch.Tensor  # (N, C, H, W)
    looks: list[tuple[str, str]] | None = None


@torch.no_grad()
def transfer_clips(pipe, clips: Latents, contents: Contents, per_clip: int, phrase: str, seed=0):
    """Each clip's motion on ``per_clip`` other content frames (decode(content, motion), encoded
    again: the pair the autoencoder makes for that video): what lets a motion taught on a few
    shapes move any shape (the decomposition's motion transfer). Captioned with the content's
    own look and the taught ``phrase`` ("a purple triangle zigzagging on a white background")
    where the looks are known, else with the clip's caption."""
    g = torch.Generator().manual_seed(seed)
    picks = torch.randint(0, len(contents.frames), (len(clips), per_clip), generator=g)
    content, motion, captions = [], [], []
    for i in range(len(clips)):
        others = contents.frames[picks[i]].to(pipe.device, pipe.autoencoder.dtype)
        moves = clips.motion[i : i + 1].expand(per_clip, -1, -1, -1).to(others)
        video = pipe.codec.decode(others, moves).float().clamp(-1, 1)  # (k, 3, T, H, W)
        c, m = pipe.codec.encode(video.to(pipe._pixel_dtype))
        content.append(c.float().cpu())
        motion.append(m.float().cpu())
        for j in picks[i].tolist():
            if contents.looks is None:
                captions.append(clips.captions[i])
            else:
                subject, background = contents.looks[j]
                captions.append(f"{subject} {phrase} on {background}")
    labels = torch.full((len(captions),), -1, dtype=torch.long)
    return Latents(torch.cat(content), torch.cat(motion), captions, labels)


def base_world(pipe, count: int, seed: int, max_shapes: int = 2) -> MovingShapes | None:
    """``count`` videos of the moving-shapes world the base learned (its world, frames and
    size), or None when the base learned other data or ``count`` < 1."""
    data = pipe.config.get("training_data") or {}
    if data.get("source") != "moving-shapes" or count < 1:
        return None
    height, width = pipe.video_size()
    return MovingShapes(
        num_videos=count,
        num_frames=int(pipe.config.num_frames),
        height=height,
        width=width,
        seed=seed,
        max_shapes=max_shapes,
        world=data.get("world") or "upright",
    )


def world_contents(pipe, count: int, seed: int = 11) -> Contents | None:
    """Content frames and looks of ``count`` one-shape videos of the base's world (moving
    shapes), or None for a base of other data."""
    world = base_world(pipe, count, seed, max_shapes=1)
    if world is None:
        return None
    looks = [appearance_phrases(world.factors(i).appearance) for i in range(count)]
    return Contents(encode_clips(pipe, world).content, looks)


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
    world = base_world(pipe, count, seed)
    if world is None:
        logger.warning(
            "the base was not trained on moving shapes: no prior preservation (its other "
            "prompts may drift while teaching)"
        )
        return None
    return encode_clips(pipe, world)

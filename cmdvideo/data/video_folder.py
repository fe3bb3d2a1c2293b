"""Real videos as a torch Dataset: a folder (flat or UCF-101 layout) or a CSV/JSONL index.

Every candidate file is probed once at construction and bad files are dropped with one warning
each, so a training run fails before it starts (not hours in) if nothing is readable.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import logging
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from cmdvideo.data.batch import VideoDataset
from cmdvideo.data.video_io import (
    COMPRESSED_EXTENSIONS,
    VIDEO_EXTENSIONS,
    VideoReadError,
    fitting_stride,
    probe_info,
    probe_video,
    read_video,
)

logger = logging.getLogger(__name__)

PATH_COLUMNS = ("path", "video", "video_path", "file", "filename", "videoid")
CAPTION_COLUMNS = ("caption", "text", "name", "prompt")
LABEL_COLUMNS = ("label", "class")


def _is_video(path: Path) -> bool:
    """A video file by its name, compressed ones included (they are skipped with a reason)."""
    suffix = path.suffix.lower()
    if suffix in COMPRESSED_EXTENSIONS:
        suffix = Path(path.stem).suffix.lower()
    return path.is_file() and suffix in VIDEO_EXTENSIONS


def _pick_column(columns, explicit, candidates, what, index_path, required):
    if explicit is not None:
        if explicit not in columns:
            raise ValueError(
                f"{index_path} has no column {explicit!r} (columns: {columns}); "
                f"set {what}_column to one of those columns."
            )
        return explicit
    found = next((c for c in candidates if c in columns), None)
    if found is None and required:
        raise ValueError(
            f"{index_path}: no {what} column among {columns}; name it one of "
            f"{candidates} or pass {what}_column=..."
        )
    return found


def _probe(path: Path, num_frames: int) -> tuple[int, str, str]:
    """(frame count, "", "") for a usable file, else (0, reason, detail)."""
    try:
        count = probe_video(path)
    except VideoReadError as e:
        return 0, e.reason, e.detail
    except FileNotFoundError:
        return 0, "missing", "no such file"
    if count < num_frames:
        return 0, "too short", f"{count} frames < num_frames={num_frames}"
    return count, "", ""


def _with_extension(path: Path) -> Path:
    """A path without a video extension (e.g. a WebVid videoid): the first existing match."""
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return path
    candidates = (path.with_name(path.name + ext) for ext in VIDEO_EXTENSIONS)
    return next((c for c in candidates if c.is_file()), path)


def _read_index(index_path: Path, path_column, caption_column, label_column):
    """Rows of a CSV/JSONL index → list of (path, caption, raw label or None)."""
    with open(index_path, newline="", encoding="utf-8") as f:
        if index_path.suffix.lower() == ".csv":
            rows = list(csv.DictReader(f))
        else:
            rows = [json.loads(line) for line in f if line.strip()]
    if not rows:
        raise ValueError(f"index file {index_path} has no rows; add one row per video.")
    columns = list(rows[0].keys())
    path_col = _pick_column(columns, path_column, PATH_COLUMNS, "path", index_path, True)
    cap_col = _pick_column(columns, caption_column, CAPTION_COLUMNS, "caption", index_path, False)
    lab_col = _pick_column(columns, label_column, LABEL_COLUMNS, "label", index_path, False)
    entries, probed = [], {}
    for row in rows:
        path = _with_extension(index_path.parent / str(row[path_col]))  # absolute stays
        caption = str(row.get(cap_col) or "") if cap_col else ""
        entries.append((path, caption, row.get(lab_col) if lab_col else None))
        if row.get("num_frames") not in (None, ""):  # written by `cmdvideo index`
            probed[str(path)] = (int(row["num_frames"]), str(row.get("error") or ""))
    return entries, probed


def _sidecar_caption(path: Path) -> str:
    """The caption in ``clip.txt`` beside ``clip.mp4`` (the layout LoRA trainers use), or ""."""
    text = path.with_suffix(".txt")
    return text.read_text(encoding="utf-8").strip() if text.is_file() else ""


def _scan_folder(root: Path) -> tuple[list[tuple[Path, str, int]], list[str]]:
    """(entries, classes) of a folder: flat (label -1) or UCF-101 layout (a class per subfolder);
    a ``.txt`` file beside a video is its caption."""
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if subdirs and not any(_is_video(p) for p in root.iterdir()):  # UCF-101 layout
        entries = [
            (p, _sidecar_caption(p), label)
            for label, d in enumerate(subdirs)
            for p in sorted(d.rglob("*"))
            if _is_video(p)
        ]
        return entries, [d.name for d in subdirs]
    return [(p, _sidecar_caption(p), -1) for p in sorted(root.rglob("*")) if _is_video(p)], []


def find_videos(root, path_column=None, caption_column=None, label_column=None):
    """(entries [(path, caption, label id)], class names, {path: (frames, error)} already
    probed by an index) of a folder or a CSV/JSONL index."""
    root = Path(root)
    probed: dict[str, tuple[int, str]] = {}
    classes: list[str] = []
    if root.is_dir():
        entries, classes = _scan_folder(root)
    elif root.suffix.lower() in (".csv", ".jsonl"):
        entries, probed = _read_index(root, path_column, caption_column, label_column)
        raw = [lab for _, _, lab in entries]
        if any(lab not in (None, "") and not str(lab).lstrip("-").isdigit() for lab in raw):
            classes = sorted({str(lab) for lab in raw})  # label names → ids
            ids = {c: i for i, c in enumerate(classes)}
            labels = [ids[str(lab)] for lab in raw]
        else:
            labels = [int(lab) if lab not in (None, "") else -1 for lab in raw]
        entries = [(p, c, lab) for (p, c, _), lab in zip(entries, labels)]
    else:
        raise ValueError(f"{root} is neither a folder nor a .csv/.jsonl index file.")
    if not entries:
        raise ValueError(f"no video files found under {root}; looked for {VIDEO_EXTENSIONS}.")
    return entries, classes, probed


def _split_key(seed: int, name: str) -> str:
    """A file's place in the held-out order: a hash of the seed and its relative path."""

    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def _probe_row(path: Path) -> dict:

    try:
        return {**probe_info(path), "error": ""}
    except VideoReadError as e:
        return {"num_frames": 0, "fps": 0.0, "width": 0, "height": 0, "error": e.reason}
    except FileNotFoundError:
        return {"num_frames": 0, "fps": 0.0, "width": 0, "height": 0, "error": "missing"}


def write_index(source, out, workers: int | None = None, progress: bool = True) -> dict:
    """Probe every video of a folder or CSV/JSONL index once and write ``out`` (JSONL: path
    relative to the index, caption, label, num_frames, fps, width, height, error — empty for a
    readable file), which :class:`VideoFolder` then reads instead of opening every file.

    Returns:
        {"videos", "readable", "errors": {reason: count}, "index": out}.
    """

    out = Path(out)
    if out.suffix.lower() != ".jsonl":
        raise ValueError(f"the index is written as JSONL: give a path ending in .jsonl, not {out}")
    entries, classes, _ = find_videos(source)
    workers = workers or min(16, os.cpu_count() or 1)
    paths = [p for p, _, _ in entries]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        rows = list(
            tqdm(
                pool.map(_probe_row, paths, chunksize=64),
                total=len(paths),
                desc="index",
                unit="video",
                disable=not progress,
            )
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    base = out.parent.resolve()
    with open(out, "w", encoding="utf-8") as f:
        for (path, caption, label), row in zip(entries, rows):
            path = Path(path).resolve()
            shown = path.relative_to(base) if path.is_relative_to(base) else path
            label_out = classes[label] if classes and label >= 0 else label
            record = {"path": str(shown), "caption": caption, "label": label_out, **row}
            f.write(json.dumps(record) + "\n")
    errors = Counter(r["error"] for r in rows if r["error"])
    return {
        "videos": len(rows),
        "readable": len(rows) - sum(errors.values()),
        "errors": dict(errors),
        "index": str(out),
    }


class VideoFolder(VideoDataset):
    """Real videos, cropped clips in the model layout.

    Args:
        root: a folder of videos — flat (label -1) or UCF-101 layout (one subfolder per class,
            searched recursively; classes sorted by name → label ids) — or a ``.csv``/``.jsonl``
            index (WebVid style) with a path column and optional caption and label columns
            (relative paths are relative to the index file's folder).
        num_frames: frames per clip (T).
        height, width: output size; the short side is resized to cover it, then cropped.
        frame_stride: step between clip frames (reduced per video when it is too short).
        train: random clip start and crop (True) or centered (False).
        clips_per_video: K clips per file (item ``i`` is a clip of file ``i // K``): random
            ones in training (a few long files still fill batches), evenly spaced from the first
            frame to the last in the held-out view (clip ``i % K``).
        seed: randomness is a function of (seed, epoch, index) only, not of worker order.
        path_column, caption_column, label_column: index column names (auto-detected if None).
        decode_threads: FFmpeg threads per decoded video (workers × processes decode at once).

    An index written by ``cmdvideo index`` (:func:`write_index`) carries every file's frame
    count: then no file is opened at start-up (WebVid-10M: 10 M opens on every rank otherwise).

    Attributes:
        classes: class names (UCF layout or a label column of names), else [].
        skipped: path → reason for every file dropped at construction.
        part: "all" files, or the "training" / "held-out" ones of :meth:`split_files`.
    """

    def __init__(
        self,
        root,
        num_frames: int = 16,
        height: int = 64,
        width: int = 64,
        frame_stride: int = 1,
        train: bool = True,
        seed: int = 0,
        path_column: str | None = None,
        caption_column: str | None = None,
        label_column: str | None = None,
        decode_threads: int = 1,
        clips_per_video: int = 1,
    ):
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(
                f"video root {root} does not exist; pass a folder of videos "
                "or a .csv/.jsonl index file."
            )
        if min(num_frames, height, width, frame_stride, clips_per_video) < 1:
            raise ValueError(
                f"num_frames, height, width, frame_stride and clips_per_video must be >= 1, got "
                f"{num_frames}, {height}, {width}, {frame_stride}, {clips_per_video}."
            )
        self.root, self.num_frames, self.frame_stride = root, num_frames, frame_stride
        self.height, self.width, self.train, self.seed, self.epoch = height, width, train, seed, 0
        self.decode_threads = decode_threads
        self.clips_per_video = clips_per_video
        entries, self.classes, probed = find_videos(root, path_column, caption_column, label_column)
        self.skipped: dict[str, str] = {}
        self.samples: list[tuple[str, str, int, int]] = []  # (path, caption, label, num frames)
        probes = _usable(entries, probed, num_frames)
        for (path, caption, label), (count, reason, detail) in zip(entries, probes):
            if count:
                self.samples.append((str(path), caption, label, count))
            else:
                self.skipped[str(path)] = reason
                logger.warning("Skipping video %s: %s (%s)", path, reason, detail or "-")
        if not self.samples:
            path, reason = next(iter(self.skipped.items()))
            raise ValueError(
                f"none of the {len(entries)} videos under {root} is usable "
                f"(skipped: {self.skip_counts()}; e.g. {path}: {reason}); fix or "
                f"replace the files, or lower num_frames={num_frames}."
            )
        self._bad: set[int] = set()  # indices that failed at runtime, not retried
        self.part = "all"  # or "training" / "held-out" files (split_files)

    def captions(self, limit: int | None = None) -> list[str]:
        """Captions of the usable videos (first ``limit``), from the index; no decoding."""
        return [caption for _, caption, _, _ in self.samples[:limit]]

    def skip_counts(self) -> dict[str, int]:
        """Reason → number of files skipped at construction."""
        return dict(Counter(self.skipped.values()))

    def split_files(self, heldout: float) -> tuple[VideoFolder, VideoFolder | None]:
        """(training files, held-out files): a fraction ``heldout`` of the usable files (rounded,
        at least one when there are two or more, never all) that training never reads. Which
        files is a function of each file's path and ``seed`` only: the same folder gives the
        same split in every command and on every process, whatever the listing order.

        Returns:
            two views of this dataset (no re-scan); the second is None when nothing is held out
            (``heldout`` 0, or a single file).
        """
        if not 0 <= heldout < 1:
            raise ValueError(
                f"data.heldout_files is the fraction of files kept out of training, in [0, 1); "
                f"got {heldout}"
            )
        n = len(self.samples)
        count = min(max(round(heldout * n), 1), n - 1) if heldout > 0 else 0
        if count < 1:
            self.part = "training"  # every file trains; an evaluation of them says so
            return self, None
        order = sorted(range(n), key=lambda i: _split_key(self.seed, self._name(i)))
        held = set(order[:count])
        parts = []
        for keep, part in ((False, "training"), (True, "held-out")):
            view = copy.copy(self)
            view.samples = [s for i, s in enumerate(self.samples) if (i in held) == keep]
            view._bad, view.part = set(), part
            parts.append(view)
        return parts[0], parts[1]

    def _name(self, i: int) -> str:
        """File ``i`` as the split sees it: its path relative to the folder (or index)."""
        path = Path(self.samples[i][0])
        base = self.root if self.root.is_dir() else self.root.parent
        return path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path)

    def evaluation_view(self, clips_per_video: int | None = None) -> VideoFolder:
        """The same files with center crops and centered clips (no re-scan of the folder);
        ``clips_per_video`` evenly spaced clips per file (default: 1)."""
        view = copy.copy(self)
        view.train, view._bad = False, set(self._bad)
        clips_per_video = 1 if clips_per_video is None else clips_per_video
        if clips_per_video < 1:
            raise ValueError(f"clips_per_video must be >= 1, got {clips_per_video}")
        view.clips_per_video = clips_per_video
        return view

    def set_epoch(self, epoch: int) -> None:
        """Change the random clips and crops (train=True) for a new epoch (an index that is an
        :class:`~cmdvideo.data.batch.EpochIndex` brings its own epoch instead)."""
        self.epoch = epoch

    def describe(self, index: int) -> str:
        """The file item ``index`` is read from (and which clip of it)."""
        path = self.samples[int(index) // self.clips_per_video][0]
        clip = int(index) % self.clips_per_video
        return path if self.clips_per_video == 1 else f"{path} (clip {clip})"

    def __len__(self) -> int:
        return len(self.samples) * self.clips_per_video

    def _clip_start(self, clip: int, count: int) -> tuple[int | None, int]:
        """(start, stride) of clip ``clip`` of ``clips_per_video`` in a ``count``-frame file;
        start None: the reader's (random in training, else centered)."""
        if self.train or self.clips_per_video == 1:
            return None, self.frame_stride
        stride = fitting_stride(count, self.num_frames, self.frame_stride)  # as the reader does
        last = max(count - (self.num_frames - 1) * stride - 1, 0)
        return round(clip * last / (self.clips_per_video - 1)), stride

    def _load(self, index: int, epoch: int) -> torch.Tensor:
        path, _, _, count = self.samples[index // self.clips_per_video]
        rng = np.random.default_rng([self.seed, epoch, index])
        start, stride = self._clip_start(index % self.clips_per_video, count)
        frames = read_video(
            path,
            self.num_frames,
            stride,
            start=start,
            rng=rng if self.train else None,
            total_frames=count,
            threads=self.decode_threads,
        )
        video = torch.from_numpy(frames).permute(0, 3, 1, 2).float()  # (T, 3, h, w) in [0, 255]
        h, w = video.shape[-2:]
        scale = max(self.height / h, self.width / w)  # cover H×W, then crop
        size = (max(self.height, round(h * scale)), max(self.width, round(w * scale)))
        if size != (h, w):
            video = F.interpolate(
                video, size=size, mode="bilinear", antialias=True, align_corners=False
            )
        dh, dw = size[0] - self.height, size[1] - self.width
        if self.train:
            top, left = int(rng.integers(0, dh + 1)), int(rng.integers(0, dw + 1))
        else:
            top, left = dh // 2, dw // 2
        video = video[:, :, top : top + self.height, left : left + self.width]  # (T, 3, H, W)
        return (video / 127.5 - 1.0).clamp(-1.0, 1.0).permute(1, 0, 2, 3).contiguous()

    def __getitem__(self, index: int) -> dict:
        """One clip.

        Returns:
            dict with "video" float32 ``(3, T, H, W)`` in [-1, 1], "label" int (-1 if none),
            "caption" str ("" if none), "path" str, "index" int (= ``index``), and "skipped":
            list of (path, reason) for files that failed to decode during this call (the next
            good video is substituted; batch with ``cmdvideo.data.collate_videos``, which keeps
            them as a list of per-item lists).
        """
        epoch = getattr(index, "epoch", self.epoch)  # an EpochIndex brings its epoch
        skipped, j = [], int(index)
        for _ in range(len(self)):
            if j // self.clips_per_video not in self._bad:
                try:
                    video = self._load(j, epoch)
                    path, caption, label, _ = self.samples[j // self.clips_per_video]
                    return {
                        "video": video,
                        "label": label,
                        "caption": caption,
                        "path": path,
                        "index": int(index),
                        "skipped": skipped,
                    }
                except (VideoReadError, FileNotFoundError) as e:
                    reason = getattr(e, "reason", "missing")
                    path = self.samples[j // self.clips_per_video][0]
                    logger.warning("Skipping video %s at runtime: %s", path, e)
                    skipped.append((path, reason))
                    self._bad.add(j // self.clips_per_video)
            j = (j + 1) % len(self)
        raise RuntimeError(
            f"every video under {self.root} failed to decode ({skipped[:3]} ...); "
            "check the files with cmdvideo.data.video_io.probe_video/read_video."
        )


def _usable(entries: list, probed: dict, num_frames: int) -> list[tuple[int, str, str]]:
    """(frames, why not usable or "", detail) of each entry (path, caption, label): from the
    index's probe where it has one, else each file demuxed once, now (in threads: mostly I/O)."""
    unknown = [p for p, _, _ in entries if str(p) not in probed]
    details: dict[str, str] = {}
    if unknown:
        with ThreadPoolExecutor(max_workers=min(8, len(unknown))) as pool:
            found = list(pool.map(_probe, unknown, [num_frames] * len(unknown)))
            probed.update({str(p): (c, r) for p, (c, r, _) in zip(unknown, found)})
            details = {str(p): d for p, (_, _, d) in zip(unknown, found)}
    probes = []
    for path, _, _ in entries:
        count, reason = probed[str(path)]
        if not reason and count < num_frames:
            count, reason = 0, "too short"
        probes.append((count if not reason else 0, reason, details.get(str(path), "")))
    return probes

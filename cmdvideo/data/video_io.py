"""The one video reader/writer every command uses (PyAV for video files, PIL for GIF/PNG).

Layouts: the model works on float ``(C, T, H, W)`` in [-1, 1]; files hold uint8 ``(T, H, W, 3)``
RGB frames. :func:`to_uint8` and :func:`from_uint8` convert between the two.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".webm", ".mkv")
# Compressed video files (e.g. "cup.mp4.gz"): found in folders, skipped with their reason.
COMPRESSED_EXTENSIONS = {".gz": "gunzip", ".bz2": "bunzip2", ".xz": "unxz", ".zst": "unzstd"}
WRITE_EXTENSIONS = (".mp4", ".gif")


class VideoReadError(ValueError):
    """A video file that cannot be used (a ValueError: bad input). ``reason`` is short and
    machine-friendly.

    Reasons used here: "unreadable", "no video stream", "zero frames", "truncated",
    "compressed", "too short", "decode error".
    """

    def __init__(self, path, reason: str, detail: str = ""):
        self.path, self.reason, self.detail = str(path), reason, detail
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))


@contextmanager
def replacing(path):
    """Write a file in one step: yields a temporary path beside ``path`` (same suffix, so
    writers that go by it work) which replaces ``path`` (``os.replace``) when the block ends
    without error, and is removed when it does not (an exception, Ctrl-C). Readers of ``path``
    see the old file or the whole new one, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path, text: str) -> Path:
    """Write a text file in one step (:func:`replacing`)."""
    with replacing(path) as temporary:
        Path(temporary).write_text(text)
    return Path(path)


_converters = threading.local()


def _rgb(frame, threads: int) -> np.ndarray:
    """A decoded frame as uint8 (H, W, 3) RGB, converted by this thread's own converter.

    Not ``frame.to_ndarray(format="rgb24")``: that converts with PyAV's per-thread scaler, whose
    slice threads (one per core since PyAV 17) do not survive a fork. A DataLoader worker forked
    after its parent converted a frame inherits that scaler without its threads and waits for
    them forever. Ours is made in the process that uses it (keyed by process id) and uses
    ``threads`` scaler threads (1 by default: nothing to inherit at all).
    """
    pid = os.getpid()
    if getattr(_converters, "pid", None) != pid:
        _converters.pid, _converters.converter = pid, VideoReformatter()
    rgb = _converters.converter.reformat(frame, format="rgb24", threads=threads)
    return rgb.to_ndarray()


def _check_exists(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Video file {path} does not exist; check the path.")
    return path


def probe_info(path) -> dict:
    """Frame count (as :func:`probe_video` counts it), frame rate and size of a video.

    Returns:
        {"num_frames", "fps" (float, 0 when the container does not say), "width", "height"}.
    """
    path = _check_exists(path)
    count = probe_video(path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        return {
            "num_frames": count,
            "fps": float(rate) if rate else 0.0,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
        }


def probe_video(path) -> int:
    """Count the frames of a video by demuxing the packets of its first video stream.

    No frame is decoded, so this is cheap. A file whose header promises more frames than it
    holds (a cut-off download) is reported as "truncated"; a file corrupted mid-stream may still
    probe fine and only fail in :func:`read_video` (reason "decode error").

    Args:
        path: video file.

    Returns:
        Number of video frames (>= 1).

    Raises:
        FileNotFoundError: the file does not exist.
        VideoReadError: not a video / unreadable, no video stream, zero frames, truncated, or
            compressed (a ``.gz``/``.bz2``/``.xz``/``.zst`` file: FFmpeg does not unpack it).
    """
    path = _check_exists(path)
    tool = COMPRESSED_EXTENSIONS.get(path.suffix.lower())
    if tool:
        raise VideoReadError(path, "compressed", f"decompress it first: {tool} {path.name}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(path, "no video stream")
            stream = container.streams.video[0]
            # Flush packets at the end of demuxing carry no data: do not count them.
            count = sum(1 for p in container.demux(stream) if p.size > 0)
            expected = stream.frames  # from the container header (0 when unknown, e.g. webm)
    except av.FFmpegError as e:
        raise VideoReadError(path, "unreadable", str(e)) from e
    if count == 0:
        raise VideoReadError(path, "zero frames")
    if count < expected:  # a cut-off download: the header promises more than the file holds
        raise VideoReadError(path, "truncated", f"{count} of {expected} frames present")
    return count


def fitting_stride(total: int, num_frames: int, frame_stride: int) -> int:
    """The largest stride <= ``frame_stride`` whose clip of ``num_frames`` fits in ``total``."""
    if num_frames > 1:
        return max(1, min(frame_stride, (total - 1) // (num_frames - 1)))
    return frame_stride


def _frame_indices(total, num_frames, frame_stride, start, rng, path) -> list[int]:
    if num_frames is None:
        return list(range(start or 0, total, frame_stride))
    if num_frames > total:
        raise VideoReadError(path, "too short", f"{total} frames < num_frames={num_frames}")
    frame_stride = fitting_stride(total, num_frames, frame_stride)
    max_start = total - ((num_frames - 1) * frame_stride + 1)
    if start is None:
        start = int(rng.integers(0, max_start + 1)) if rng is not None else max_start // 2
    elif not 0 <= start <= max_start:
        raise ValueError(
            f"start={start} is out of range for {path} ({total} frames, {num_frames} frames at "
            f"stride {frame_stride}); use 0 <= start <= {max_start}, or start=None."
        )
    return [start + k * frame_stride for k in range(num_frames)]


def read_video(
    path,
    num_frames: int | None = None,
    frame_stride: int = 1,
    start: int | None = None,
    rng: np.random.Generator | None = None,
    total_frames: int | None = None,
    threads: int = 1,
) -> np.ndarray:
    """Decode a clip of a video with PyAV, seeking to the clip's start.

    Args:
        path: video file (any container/codec FFmpeg reads, including GIF).
        num_frames: frames to return; None returns every ``frame_stride``-th frame from
            ``start`` (or 0) to the end.
        frame_stride: step between returned frames. If the video is too short for it, the
            largest smaller stride that fits is used (down to 1).
        start: index of the first frame; None picks a random start from ``rng`` if given,
            else the centered clip. A clip at the very end of a file whose last packets hold
            no decodable frame is moved back by the missing frames.
        rng: random generator for the start (only used when ``start`` is None).
        total_frames: the frame count if already known (from :func:`probe_video`), to skip
            probing again.
        threads: decoder and colour-converter threads (0: FFmpeg's choice, one per core). Data
            loaders run many decoders at once (workers × processes), so one each is the default.

    Returns:
        uint8 array ``(T, H, W, 3)``, RGB, values in [0, 255].

    Raises:
        FileNotFoundError: the file does not exist.
        VideoReadError: see :func:`probe_video`; "too short" if the video has fewer than
            ``num_frames`` frames; "decode error" if decoding fails or stops early
            (truncated or corrupt file).
        ValueError: bad arguments.
    """
    if frame_stride < 1 or (num_frames is not None and num_frames < 1):
        raise ValueError(
            f"need frame_stride >= 1 and num_frames >= 1 (or None), got "
            f"frame_stride={frame_stride}, num_frames={num_frames}."
        )
    total = total_frames if total_frames is not None else probe_video(path)
    wanted = _frame_indices(total, num_frames, frame_stride, start, rng, path)
    if not wanted:
        raise VideoReadError(path, "too short", f"start={start} is past the last frame")
    try:
        with av.open(str(_check_exists(path))) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = threads
            seek = wanted[0] > 0
            frames = _seek_and_decode(container, stream, wanted, threads) if seek else None
            if frames is None:  # from the first frame (also when seeking cannot be trusted)
                if seek:
                    container.seek(0)  # (flushes the decoder)
                frames = _decode_from_start(container, stream, wanted, threads)
    except av.FFmpegError as e:
        raise VideoReadError(path, "decode error", str(e)) from e
    if len(frames) < len(wanted) and num_frames is None and frames:
        return np.stack(frames)  # "every frame": what decodes (the last packets may hold none)
    if len(frames) < len(wanted):
        short = len(wanted) - len(frames)
        step = wanted[1] - wanted[0] if len(wanted) > 1 else 1
        if wanted[-1] >= total - short * step - 1 and wanted[0] >= short * step:
            # The clip ran into the end of a file whose last packets decode to no frame (seen
            # in real MPEG-4 files: 456 packets, 455 frames): the same clip, moved back.
            return read_video(
                path,
                num_frames,
                frame_stride,
                wanted[0] - short * step,
                None,
                total - short * step,
                threads,
            )
        raise VideoReadError(
            path, "decode error", f"decoded {len(frames)} of {len(wanted)} needed frames"
        )
    return np.stack(frames)


def _decode_from_start(container, stream, wanted: list[int], threads: int = 1) -> list[np.ndarray]:
    wanted_set, last, frames = set(wanted), wanted[-1], []
    for i, frame in enumerate(container.decode(stream)):
        if i in wanted_set:
            frames.append(_rgb(frame, threads))
        if i >= last:  # stop once the last needed frame is decoded
            break
    return frames


def _seek_and_decode(
    container, stream, wanted: list[int], threads: int = 1
) -> list[np.ndarray] | None:
    """Seek to the keyframe before the first wanted frame and decode from there, telling frame
    indices from timestamps (constant frame rate). None when that cannot be trusted (no rate
    or timestamps, or the seek landed after the first wanted frame)."""
    rate, base = stream.average_rate or stream.guessed_rate, stream.time_base
    if not rate or not base:
        return None
    start = stream.start_time or 0

    def index_of(pts) -> int:
        return round(float((pts - start) * base * rate))

    container.seek(start + int(wanted[0] / (rate * base)), stream=stream, backward=True)
    wanted_set, last, frames, previous = set(wanted), wanted[-1], [], None
    for frame in container.decode(stream):
        if frame.pts is None:
            return None
        i = index_of(frame.pts)
        if (previous is None and i > wanted[0]) or (previous is not None and i <= previous):
            return None  # landed past the clip, or timestamps out of order (e.g. H.264 in AVI)
        previous = i
        if i in wanted_set:
            frames.append(_rgb(frame, threads))
        if i >= last:
            break
    return frames if len(frames) == len(wanted) else None


def to_uint8(video) -> np.ndarray:
    """Model layout → file layout.

    Args:
        video: float ``(C, T, H, W)`` in [-1, 1], torch or numpy, C = 1 or 3.

    Returns:
        uint8 ``(T, H, W, 3)`` in [0, 255] (rounded, clamped; grey is repeated to RGB).
    """
    if isinstance(video, torch.Tensor):
        video = video.detach().float().cpu().numpy()
    video = np.asarray(video, dtype=np.float32)
    if video.ndim != 4 or video.shape[0] not in (1, 3):
        raise ValueError(
            f"expected a (C, T, H, W) video with C = 1 or 3, got shape "
            f"{video.shape}; decode latents to pixels first."
        )
    video = np.clip(np.round((video + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return np.repeat(video, 3 // video.shape[0], axis=0).transpose(1, 2, 3, 0)


def from_uint8(frames: np.ndarray) -> torch.Tensor:
    """File layout → model layout: uint8 ``(T, H, W, 3)`` → float32 ``(3, T, H, W)`` in [-1, 1]."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 (T, H, W, 3) frames, got {frames.dtype} {frames.shape}.")
    return torch.from_numpy(frames).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)


def _as_frames(video, upscale: int) -> np.ndarray:
    """Any accepted layout → uint8 (T, H, W, 3), nearest-neighbour upscaled by an integer factor.

    Accepted: float ``(C, T, H, W)`` in [-1, 1] (model layout, torch or numpy); uint8
    ``(T, H, W, 3)``; float numpy ``(T, H, W, 3)`` in [0, 1] (a pipeline's ``"np"`` frames, as
    diffusers' ``export_to_video`` takes them); a list of PIL images (``"pil"`` frames).
    """
    if isinstance(video, (list, tuple)) and video and hasattr(video[0], "convert"):
        frames = np.stack([np.asarray(im.convert("RGB")) for im in video])
    elif isinstance(video, np.ndarray) and video.dtype == np.uint8 and video.ndim == 4:
        frames = video
    elif isinstance(video, np.ndarray) and video.ndim == 4 and video.shape[-1] == 3:
        frames = np.clip(np.round(video.astype(np.float32) * 255), 0, 255).astype(np.uint8)
    else:
        if (
            isinstance(video, torch.Tensor)
            and video.ndim == 4
            and video.shape[1] == 3 != video.shape[0]
        ):
            raise ValueError(
                f"got a (T, 3, H, W) tensor {tuple(video.shape)}: pipeline frames are written as "
                "they come with output_type='np' (the default) or 'pil'; tensors are read as "
                "(3, T, H, W) in [-1, 1]"
            )
        frames = to_uint8(video)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected (T, H, W, 3) frames, got shape {frames.shape}")
    if upscale < 1:
        raise ValueError(f"upscale must be an integer >= 1, got {upscale}.")
    if upscale > 1:
        frames = frames.repeat(upscale, axis=1).repeat(upscale, axis=2)
    return np.ascontiguousarray(frames)


def _mp4_codec() -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_video(path, video, fps: int = 8, upscale: int = 1) -> Path:
    """Write a video file; the suffix picks the format (".mp4" via PyAV, ".gif" via PIL).

    Args:
        path: output file; parent folders are created.
        video: float ``(C, T, H, W)`` in [-1, 1] (torch or numpy); uint8 ``(T, H, W, 3)``; or
            one video of a pipeline's output as it comes: ``out.frames[i]`` of
            ``output_type="np"`` ((T, H, W, 3) in [0, 1]) or ``"pil"`` (a list of images).
        fps: frames per second.
        upscale: nearest-neighbour integer upscaling (so 32×32 videos are visible).

    Returns:
        The written path, written in one step (:func:`replacing`: an interruption leaves the
        old file or none, never half a video). MP4 uses libx264/yuv420p (or "mpeg4" if libx264
        is missing) and is edge-padded to even width/height; GIF loops forever (identical
        consecutive frames are merged by PIL).
    """
    path = Path(path)
    if path.suffix.lower() not in WRITE_EXTENSIONS:
        raise ValueError(f"cannot write {path}: supported suffixes are {WRITE_EXTENSIONS}.")
    frames = _as_frames(video, upscale)
    with replacing(path) as temporary:  # a Ctrl-C mid-file leaves no half-written video
        if path.suffix.lower() == ".gif":
            _write_gif(temporary, frames, fps)
        else:
            _write_mp4(temporary, frames, fps)
    return path


def _write_gif(path: Path, frames: np.ndarray, fps: int) -> None:

    images = [Image.fromarray(f) for f in frames]
    duration = max(1, round(1000 / fps))
    images[0].save(
        path, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0
    )


def _write_mp4(path: Path, frames: np.ndarray, fps: int) -> None:
    t, h, w, _ = frames.shape  # yuv420p needs even sizes
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    codec = _mp4_codec()
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18"}
        else:
            stream.bit_rate = 8_000_000
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())  # flush the encoder


def pipeline_frames_to_videos(frames: torch.Tensor) -> torch.Tensor:
    """A pipeline's ``output_type="pt"`` frames (B, T, 3, H, W) in [0, 1] -> videos in model
    layout (B, 3, T, H, W) in [-1, 1], e.g. for the evaluation networks."""
    if frames.ndim != 5 or frames.shape[2] != 3:
        raise ValueError(f"expected (B, T, 3, H, W) frames, got shape {tuple(frames.shape)}")
    return frames.permute(0, 2, 1, 3, 4) * 2 - 1


def _image_as_video(row):
    """An image ((C, H, W) model layout, or (H, W, 3) numpy as pipelines give content frames)
    as a one-frame video; videos unchanged."""
    if hasattr(row, "convert"):  # a PIL image
        return [row]
    if row.ndim != 3:
        return row
    if isinstance(row, np.ndarray) and row.shape[-1] == 3:
        return row[None]
    return row[:, None]


def write_frame_grid(
    path, rows: list, labels: list[str] | None = None, upscale: int = 1, pad: int = 2
) -> Path:
    """Write a PNG with one row per video and one frame per column (e.g. source | content
    frame | reconstruction previews).

    Args:
        path: output PNG; parent folders are created.
        rows: videos or images (shown once, first column) in any layout :func:`write_video`
            takes, e.g. ``(C, T, H, W)`` / ``(C, H, W)`` in [-1, 1], or a pipeline's ``"np"``
            frames (T, H, W, 3) / content frames (H, W, 3) in [0, 1].
        labels: optional text per row, drawn left of the row (PIL default font).
        upscale: nearest-neighbour integer upscaling of every frame.
        pad: white gap in pixels between cells and around the border.

    Returns:
        The written path. Size: width = label_width + cols·(W·upscale + pad) + pad,
        height = rows·(H·upscale + pad) + pad, with cols the longest row's T, H and W the
        largest frame size, label_width 0 without labels.
    """

    if not rows:
        raise ValueError("write_frame_grid needs at least one row.")
    if labels is not None and len(labels) != len(rows):
        raise ValueError(f"got {len(labels)} labels for {len(rows)} rows; give one per row.")
    videos = [_as_frames(_image_as_video(r), upscale) for r in rows]
    cols = max(v.shape[0] for v in videos)
    cell_h, cell_w = max(v.shape[1] for v in videos), max(v.shape[2] for v in videos)
    font = ImageFont.load_default()
    label_w = 0
    if labels:
        probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        label_w = int(max(probe.textlength(str(s), font=font) for s in labels)) + pad
    width = label_w + cols * (cell_w + pad) + pad
    height = len(videos) * (cell_h + pad) + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, frames in enumerate(videos):
        top = pad + r * (cell_h + pad)
        if labels:
            _, y0, _, y1 = draw.textbbox((0, 0), str(labels[r]), font=font)
            draw.text(
                (pad, top + (cell_h - y1 - y0) // 2), str(labels[r]), fill=(0, 0, 0), font=font
            )
        for c, frame in enumerate(frames):
            canvas.paste(Image.fromarray(frame), (label_w + pad + c * (cell_w + pad), top))
    with replacing(path) as temporary:
        canvas.save(temporary, format="PNG")
    return Path(path)

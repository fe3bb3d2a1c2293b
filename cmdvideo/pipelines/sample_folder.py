"""The folder of generated videos that ``cmdvideo sample`` and ``cmdvideo demo`` write, and that
evaluation (``eval clipsim``, ``eval fvd --generated``) reads back::

    OUT/video-000.mp4, video-000.gif, ...   one pair per video
    OUT/prompts.txt                         "video-000: <prompt or condition>" per line
    OUT/grid.png                            (sample) one row per video (the first 64), one
                                            frame per column
    OUT/index.html, gallery.json            (demo) a page of GIFs with prompt, seed and time

Every file is written in one step (a temporary file, then renamed), and each video as soon as
it is made, with ``prompts.txt`` / the gallery updated: a run stopped half-way (Ctrl-C) keeps
every finished video, listed, and leaves no half-written file.
"""

from __future__ import annotations

import html
import json
import logging
import re
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

from ..data.video_io import write_frame_grid, write_text, write_video

logger = logging.getLogger(__name__)

PROMPTS_FILE = "prompts.txt"
GRID_ROWS = 64  # grid.png shows the first videos only: its memory and size stay bounded
_LISTING = re.compile(r"(video-\d+): (.*)")


def video_stem(index: int) -> str:
    return f"video-{index:03d}"


def _index(path: Path) -> int | None:
    match = re.fullmatch(r"video-(\d+)", path.stem)
    return int(match[1]) if match else None


def write_sample_video(out: str | Path, index: int, frames, fps: int = 8, upscale: int = 4):
    """``OUT/video-NNN.mp4`` and ``.gif`` of one video (any layout ``write_video`` takes, e.g.
    a pipeline's ``out.frames[i]``). Returns both paths."""
    stem = Path(out) / video_stem(index)
    return [
        write_video(stem.with_suffix(s), frames, fps=fps, upscale=upscale) for s in (".mp4", ".gif")
    ]


@contextmanager
def interrupts_held():
    """Ctrl-C (SIGINT) arriving inside the block is raised when it ends, so the block's files
    are written together or not at all (in the main thread; elsewhere the block runs as is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(*caught[0])
        elif caught and previous != signal.SIG_IGN:
            raise KeyboardInterrupt


class SampleFolder:
    """A sample folder written one video at a time: :meth:`add` writes the video (mp4 + gif)
    and rewrites ``prompts.txt``; :meth:`close` writes ``grid.png``. Used as a context manager,
    the grid is written however the block ends, so an interrupted run keeps a complete folder
    of the videos it finished."""

    def __init__(self, out: str | Path, fps: int = 8, upscale: int = 4):
        self.out, self.fps, self.upscale = Path(out), fps, upscale
        self.names: list[str] = []
        self.rows: list = []  # the first GRID_ROWS videos, for grid.png
        self.paths: list[Path] = []

    def add(self, video, name: str) -> list[Path]:
        """Write the next video (any layout :func:`write_video` takes, e.g. a pipeline's
        ``out.frames[i]``) and list it in ``prompts.txt``; returns its two files."""
        index = len(self.names)
        with interrupts_held():  # a Ctrl-C leaves no whole video unlisted
            paths = write_sample_video(self.out, index, video, self.fps, self.upscale)
            self.names.append(name)
            write_text(
                self.out / PROMPTS_FILE,
                "".join(f"{video_stem(i)}: {n}\n" for i, n in enumerate(self.names)),
            )
        if len(self.rows) < GRID_ROWS:
            self.rows.append(video)
        self.paths += paths
        return paths

    def close(self) -> list[Path]:
        """Write ``grid.png`` (when any video was made); returns every file written. Warns
        about videos an earlier run left in the folder beyond those of this one."""
        older = sorted(
            p.name
            for p in self.out.glob("video-*.mp4")
            if _index(p) is not None and _index(p) >= len(self.names)
        )
        if older:
            logger.warning(
                "%s also holds %d videos of an earlier run (%s ...), not in %s",
                self.out,
                len(older),
                older[0],
                PROMPTS_FILE,
            )
        if self.rows:
            grid = write_frame_grid(self.out / "grid.png", self.rows, upscale=self.upscale)
            return [*self.paths, grid, self.out / PROMPTS_FILE]
        return list(self.paths)

    def __enter__(self) -> SampleFolder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_sample_folder(
    out: str | Path, videos, names: list[str], fps: int = 8, upscale: int = 4
) -> list[Path]:
    """Write every video (mp4 + gif), ``grid.png`` and ``prompts.txt``; returns the paths.

    Args:
        videos: a pipeline's frames (``output_type="np"``: (B, T, H, W, 3) in [0, 1]) or a list
            of videos in any layout :func:`write_video` takes.
        names: the prompt / condition of each video, for ``prompts.txt``.
    """
    if len(names) != len(videos):
        raise ValueError(f"{len(names)} names for {len(videos)} videos")
    folder = SampleFolder(out, fps, upscale)
    for video, name in zip(videos, names):
        folder.add(video, name)
    return folder.close()


def read_sample_folder(folder: str | Path) -> list[tuple[Path, str]]:
    """(mp4 path, prompt) of every video listed in a sample folder's ``prompts.txt``."""
    folder = Path(folder)
    listing = folder / PROMPTS_FILE
    if not listing.is_file():
        raise FileNotFoundError(f"{listing} not found: give a folder written by `cmdvideo sample`")
    found = []
    for line in listing.read_text().splitlines():
        match = _LISTING.match(line)
        if match and (folder / f"{match[1]}.mp4").is_file():
            found.append((folder / f"{match[1]}.mp4", match[2]))
    if not found:
        raise ValueError(f"no video-NNN.mp4 listed in {listing}")
    return found


def write_gallery(out: str | Path, entries: list[dict], title: str, description: str) -> Path:
    """``OUT/index.html`` (each GIF with its prompt, seed and generation time) and
    ``OUT/gallery.json``.

    Args:
        entries: {"file": stem, "prompt", "seed", "seconds"} per video written in ``out``.
        description: a sentence or two of plain text about how the videos were made.
    """
    out = Path(out)
    cards = "\n".join(
        f'<figure><img src="{e["file"]}.gif" alt="{html.escape(e["prompt"])}">'
        f"<figcaption>{html.escape(e['prompt'])}<br><small>seed {e['seed']} · "
        f'{e["seconds"]:.2f} s · <a href="{e["file"]}.mp4">mp4</a></small></figcaption></figure>'
        for e in entries
    )
    page = write_text(
        out / "index.html",
        f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} figure{{display:inline-block;width:170px;
margin:8px;vertical-align:top}} img{{width:160px;image-rendering:pixelated}}
figcaption{{font-size:13px}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(description)}</p>
{cards}
</body></html>
""",
    )
    write_text(out / "gallery.json", json.dumps(entries, indent=1))
    return page

"""Data-loader workers after the main process has decoded video: start-up cost, throughput and
a stress run per start method, beside the hang the fix removes (PyAV's own frame conversion).

    python experiments/data-loading/measure.py            # ~10 min on 2 cores
    python experiments/data-loading/measure.py --iterations 20 --no-control   # a quick look

Clips: 12 real ones cut from Debian's opencv-doc files (native sizes, re-encoded as H.264 MP4,
as a user's folder would hold), written once to runs/data-loading/clips. Writes
results/data-loading/loader.{json,md}.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cmdvideo.data import collate_videos
from cmdvideo.data.video_folder import VideoFolder
from cmdvideo.data.video_io import read_video, write_video

OPENCV = Path("/usr/share/doc/opencv-doc")
SOURCES = [
    OPENCV / "examples/data/vtest.avi",
    OPENCV / "examples/data/Megamind.avi",
    OPENCV / "opencv4/html/box.mp4.gz",
    OPENCV / "opencv4/html/cup.mp4.gz",
]
METHODS = ("fork", "forkserver", "spawn")
BATCH, WORKERS = 4, 2


def make_clips(out: Path, per_file: int = 3, frames: int = 48) -> Path:
    """``per_file`` clips of ``frames`` frames from each source file, at its own size."""
    if out.is_dir() and len(list(out.glob("*.mp4"))) == per_file * len(SOURCES):
        return out
    missing = [str(p) for p in SOURCES if not p.exists()]
    if missing:
        sys.exit(f"needs Debian's opencv-doc (apt-get install opencv-doc): missing {missing}")
    out.mkdir(parents=True, exist_ok=True)
    for source in SOURCES:
        path = source
        if source.suffix == ".gz":  # FFmpeg does not unpack it
            path = out.parent / "unpacked" / source.stem
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(gzip.decompress(source.read_bytes()))
        video = read_video(path)
        for k in range(per_file):
            start = k * (len(video) - frames) // max(per_file - 1, 1)
            name = f"{Path(source.stem).stem}-{k}.mp4"
            write_video(out / name, video[start : start + frames], fps=10)
    return out


class PyAVOwnConversion(Dataset):
    """The reader as it was: ``frame.to_ndarray(format="rgb24")``, i.e. PyAV's per-thread
    converter with its default threads. The control that hangs in forked workers."""

    def __init__(self, paths: list[Path]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        with av.open(str(self.paths[index])) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)][:16]
        video = torch.from_numpy(np.stack([f[:64, :64] for f in frames]))
        return {"video": video.permute(3, 0, 1, 2).float() / 127.5 - 1, "index": index}


def one_pass(dataset, method: str | None, timeout: float = 60.0, persistent=False, epochs=1):
    """(seconds to the first batch, seconds in all, clips, timed out?)."""
    workers = 0 if method is None else WORKERS
    extra = {} if method is None else {"multiprocessing_context": method, "timeout": timeout}
    loader = DataLoader(
        dataset,
        batch_size=BATCH,
        collate_fn=collate_videos,
        num_workers=workers,
        persistent_workers=persistent and workers > 0,
        **extra,
    )
    start, first, clips = time.perf_counter(), None, 0
    try:
        for epoch in range(epochs):
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            for batch in loader:
                first = first or time.perf_counter() - start
                clips += len(batch["video"])
    except RuntimeError as e:
        if "timed out" not in str(e):
            raise
        return first, time.perf_counter() - start, clips, True
    finally:
        del loader  # shuts the workers down
    return first, time.perf_counter() - start, clips, False


def throughput(dataset, repeats: int, epochs: int) -> dict:
    """Per start method (and in-process): start-up and clips per second, persistent workers."""
    rows = {}
    for method in (None, *METHODS):
        runs = []
        for _ in range(repeats):
            dataset[0]  # the main process decodes first, as previews and the tests do
            runs.append(one_pass(dataset, method, persistent=True, epochs=epochs))
        rows[method or "in-process"] = {
            "first_batch_s": statistics.median(r[0] for r in runs),
            "total_s": statistics.median(r[1] for r in runs),
            "clips_per_s": statistics.median(r[2] / r[1] for r in runs),
            # after the first batch: what the workers give once they run
            "steady_clips_per_s": statistics.median((r[2] - BATCH) / (r[1] - r[0]) for r in runs),
            "epochs": epochs,
            "timed_out": sum(r[3] for r in runs),
        }
        print(method or "in-process", rows[method or "in-process"], flush=True)
    return rows


def stress(dataset, iterations: int) -> dict:
    """``iterations`` fresh loaders after a read in the main process, split over the start
    methods (fork takes half: it is the default and the one that used to hang)."""
    shares = {"fork": iterations // 2, "forkserver": iterations // 4}
    shares["spawn"] = iterations - sum(shares.values())
    result = {}
    for method, count in shares.items():
        t0, hung = time.perf_counter(), 0
        for i in range(count):
            dataset[i % len(dataset)]
            hung += one_pass(dataset, method)[3]
        result[method] = {
            "iterations": count,
            "timed_out": hung,
            "seconds": time.perf_counter() - t0,
        }
        print("stress", method, result[method], flush=True)
    return result


def control(paths: list[Path], tries: int, timeout: float) -> dict:
    """The old conversion under fork, after a read in the main process: how often it hangs."""
    dataset = PyAVOwnConversion(paths)
    hung = 0
    for _ in range(tries):
        dataset[0]
        hung += one_pass(dataset, "fork", timeout=timeout)[3]
    print("control", hung, "of", tries, flush=True)
    return {"tries": tries, "timed_out": hung, "timeout_s": timeout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", default="runs/data-loading/clips")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--no-control", action="store_true")
    parser.add_argument("--out", default="results/data-loading")
    args = parser.parse_args()
    torch.set_num_threads(1)
    clips = make_clips(Path(args.clips))
    dataset = VideoFolder(clips, num_frames=16, height=64, width=64, seed=0)
    report = {
        "clips": len(dataset),
        "batch_size": BATCH,
        "workers": WORKERS,
        "av": av.__version__,
        "ffmpeg": av.ffmpeg_version_info,
        "torch": torch.__version__,
        "throughput": throughput(dataset, args.repeats, args.epochs),
        "stress": stress(dataset, args.iterations),
    }
    if not args.no_control:
        report["control_pyav_own_conversion"] = control(sorted(clips.glob("*.mp4")), 3, 20.0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "loader.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "loader.md").write_text(markdown(report))
    print((out / "loader.md").read_text())
    shutil.rmtree(Path(args.clips).parent / "unpacked", ignore_errors=True)


def markdown(report: dict) -> str:
    lines = [
        f"{report['clips']} real clips, batch {report['batch_size']}, {report['workers']} workers "
        f"(persistent), {report['throughput']['fork']['epochs']} epochs; PyAV {report['av']}, "
        f"FFmpeg {report['ffmpeg']}, torch {report['torch']}; median of the repeats.",
        "",
        "| start method | first batch (s) | clips / s | × in-process | after the first batch |",
        "|---|---:|---:|---:|---:|",
    ]
    base = report["throughput"]["in-process"]["clips_per_s"]
    for name, row in report["throughput"].items():
        lines.append(
            f"| {name} | {row['first_batch_s']:.2f} | {row['clips_per_s']:.1f} | "
            f"{row['clips_per_s'] / base:.2f} | {row['steady_clips_per_s']:.1f} |"
        )
    lines += ["", "| stress: fresh loader after a read in the main process | runs | hung | s |"]
    lines.append("|---|---:|---:|---:|")
    for name, row in report["stress"].items():
        lines.append(
            f"| {name} | {row['iterations']} | {row['timed_out']} | {row['seconds']:.0f} |"
        )
    if "control_pyav_own_conversion" in report:
        c = report["control_pyav_own_conversion"]
        lines.append(
            f"| control: PyAV's own conversion, fork | {c['tries']} | {c['timed_out']} | "
            f"(timeout {c['timeout_s']:g} s) |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

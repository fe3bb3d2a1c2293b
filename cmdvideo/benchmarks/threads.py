"""How many torch CPU threads a command should use: the numbers behind ``--threads``' default.

Every setting runs in a fresh process (threads are fixed per process), on an idle machine and
with a competing process that keeps one core busy (a pure-Python loop, as another user's job
would), for two workloads: sampling the bundled pipeline one video at a time (what ``cmdvideo
demo`` does) and training steps of the tiny autoencoder (what ``cmdvideo train`` does).

    python -m cmdvideo.benchmarks.threads --out results/threads      # ~10 min on 2 cores
    python -m cmdvideo.benchmarks.threads --dry-run                  # tiny sizes, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = ("torch-default", "1", "all", "rule")
JOBS = ("sample", "train")


def _threads(setting: str) -> int | None:
    """Threads a setting asks for; None leaves torch's own default."""
    if setting == "torch-default":
        return None
    if setting == "all":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if setting == "rule":
        from ..runtime import default_threads

        return default_threads()
    return int(setting)


def run_job(job: str, setting: str, repeats: int, dry_run: bool) -> dict:
    """Median seconds per video (sample) or per optimizer step (train), in this process."""
    import torch

    threads = _threads(setting)
    if threads is not None:
        torch.set_num_threads(threads)
    times = []
    if job == "sample":
        from ..pipelines.cmd import CMDPipeline

        pipe = CMDPipeline.from_pretrained("moving-shapes-tiny")
        pipe.set_progress_bar_config(disable=True)
        steps = 2 if dry_run else 25
        for i in range(repeats + 1):  # the first call warms up
            start = time.perf_counter()
            pipe(
                prompt="a red circle moving left on a blue background",
                num_inference_steps=steps,
                generator=torch.Generator().manual_seed(i),
            )
            times.append(time.perf_counter() - start)
    elif job == "train":
        from ..config import load_config
        from ..data import build_dataset, take_batch
        from ..training.stages import AutoencoderStage

        sets = ["data.num_frames=4", "data.height=16", "data.width=16"] if dry_run else []
        config = load_config("tiny", sets)
        batch = take_batch(build_dataset(config.data), config.train.batch_size)
        stage = AutoencoderStage(config)
        model = stage.model()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        for _ in range(repeats + 1):
            start = time.perf_counter()
            loss, _ = model(batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            times.append(time.perf_counter() - start)
    else:
        raise ValueError(f"job must be one of {JOBS}, got {job!r}")
    return {
        "job": job,
        "setting": setting,
        "threads": torch.get_num_threads(),
        "seconds": statistics.median(times[1:]),
        "all_seconds": times,
    }


def _isolated(job: str, setting: str, repeats: int, dry_run: bool) -> dict:
    argv = [
        sys.executable,
        "-m",
        "cmdvideo.benchmarks.threads",
        "--job",
        job,
        "--setting",
        setting,
        "--repeats",
        str(repeats),
    ] + (["--dry-run"] if dry_run else [])
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        raise RuntimeError(f"{job} / {setting} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(repeats: int = 4, dry_run: bool = False) -> dict:
    """Every job × setting, idle and loaded; returns the table and the machine."""
    rows = []
    for load in ("idle", "one core busy"):
        competitor = None
        if load != "idle":
            competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(1.0)
        try:
            for job in JOBS:
                for setting in SETTINGS:
                    row = _isolated(job, setting, repeats, dry_run)
                    rows.append({**row, "load": load})
                    print(
                        f"{load:14s} {job:6s} {setting:14s} threads {row['threads']}: "
                        f"{row['seconds']:.3f} s",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cores": cores, "repeats": repeats, "dry_run": dry_run, "rows": rows}


def to_markdown(result: dict) -> str:
    """One table: seconds per video / step for each setting, idle and loaded, and each
    setting's ratio to the best of its row."""
    lines = [
        f"Threads on a {result['cores']}-core machine (medians of {result['repeats']} runs, each "
        "setting in a fresh process; ratio = time / best time in the row).",
        "",
        "| workload | load | " + " | ".join(SETTINGS) + " |",
        "|---|---|" + "---:|" * len(SETTINGS),
    ]
    for job in JOBS:
        for load in ("idle", "one core busy"):
            cells = {
                r["setting"]: r for r in result["rows"] if r["job"] == job and r["load"] == load
            }
            best = min(r["seconds"] for r in cells.values())
            unit = "s/video" if job == "sample" else "s/step"
            lines.append(
                f"| {job} ({unit}) | {load} | "
                + " | ".join(
                    f"{cells[s]['seconds']:.3f} ({cells[s]['threads']} thr, "
                    f"{cells[s]['seconds'] / best:.1f}×)"
                    for s in SETTINGS
                )
                + " |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="outputs/threads", help="folder for threads.{json,md}")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes: check it runs")
    parser.add_argument("--job", choices=JOBS, help=argparse.SUPPRESS)  # worker mode
    parser.add_argument("--setting", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job:
        print(json.dumps(run_job(args.job, args.setting, args.repeats, args.dry_run)))
        return 0
    result = measure(args.repeats, args.dry_run)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "threads.json").write_text(json.dumps(result, indent=1))
    (out / "threads.md").write_text(to_markdown(result))
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

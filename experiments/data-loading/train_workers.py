"""Training over a folder of real clips with and without loader workers, side by side: the run
with workers must end (several epochs, previews between them) and not be slower.

    python experiments/data-loading/train_workers.py     # after measure.py made the clips

Runs `cmdvideo train autoencoder --config tiny --data runs/data-loading/clips` for 16 steps of
batch 4 (11 training files: 8 epochs, a preview every 4 steps) with data.num_workers 0 and 2,
alternately, and writes results/data-loading/train-workers.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run(clips: Path, out: Path, workers: int, threads: int) -> dict:
    argv = [
        sys.executable,
        "-m",
        "cmdvideo.cli",
        "train",
        "autoencoder",
        "--config",
        "tiny",
        "--data",
        str(clips),
        "--out",
        str(out),
        "--max-steps",
        "16",
        "--threads",
        str(threads),
        "--set",
        "train.batch_size=4",
        "--set",
        "train.preview_every=4",
        "--set",
        "train.checkpoint_every=8",
        "--set",
        f"data.num_workers={workers}",
    ]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {
        "seconds": seconds,
        "epochs": sum(e.get("event") == "epoch_end" for e in events),
        "previews": len(list((out / "previews").glob("step-*.png"))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", default="runs/data-loading/clips")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="results/data-loading/train-workers.json")
    args = parser.parse_args()
    runs: dict[int, list[dict]] = {0: [], 2: []}
    for repeat in range(args.repeats):
        for workers in (0, 2):
            folder = Path("runs/data-loading") / f"train-w{workers}-{repeat}"
            subprocess.run(["rm", "-rf", str(folder)], check=True)
            runs[workers].append(run(Path(args.clips), folder, workers, args.threads))
            print(workers, runs[workers][-1], flush=True)
    summary = {
        f"num_workers={w}": {
            "median_s": statistics.median(r["seconds"] for r in rows),
            "runs": rows,
        }
        for w, rows in runs.items()
    }
    summary["ratio_workers_2_to_0"] = (
        summary["num_workers=2"]["median_s"] / summary["num_workers=0"]["median_s"]
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

"""The README's Python snippet against ``cmdvideo sample``, as a user meets them on a busy CPU.

Each run is a fresh process timed from start to exit (interpreter, imports, loading the bundled
pipeline, one video, writing it), with one core kept busy by another process (a pure-Python
loop, as another user's job would). Three ways to make the same video (same prompt, seed 0),
run in turn so that both see the same load:

- ``snippet``: the Python block under "## Python" in README.md, exactly as written;
- ``cli``: ``cmdvideo sample --prompt <the snippet's prompt> --seed 0``;
- ``snippet, torch threads``: the snippet with ``pipe.set_threads(None)`` after loading, i.e.
  torch's one thread per core — what the snippet ran with before the pipeline applied the
  command line's thread rule.

    python -m cmdvideo.benchmarks.python_api --out results/python-api   # ~5 min on 2 cores
    python -m cmdvideo.benchmarks.python_api --repeats 1 --no-load      # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
WAYS = ("snippet", "cli", "snippet, torch threads")


def readme_snippet(readme: Path = README) -> str:
    """The first ```python block of README.md's "## Python" section."""
    if not readme.is_file():
        raise FileNotFoundError(f"{readme} not found: run this from a clone of the repository")
    section = readme.read_text().split("\n## Python\n", 1)[-1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    if match is None:
        raise ValueError(f"no ```python block under '## Python' in {readme}")
    return match.group(1)


def _commands(snippet: str) -> dict[str, list[str]]:
    prompt = re.search(r'prompt="([^"]+)"', snippet)
    if prompt is None:
        raise ValueError('the README snippet has no prompt="..." to give the command line')
    without_rule = re.sub(
        r"^(pipe = .*)$", r"\1\npipe.set_threads(None)", snippet, count=1, flags=re.M
    )
    if without_rule == snippet:
        raise ValueError("the README snippet has no `pipe = ...` line")
    cli = [sys.executable, "-m", "cmdvideo.cli", "sample", "--model", "moving-shapes-tiny"]
    cli += ["--prompt", prompt.group(1), "--seed", "0", "--quiet", "--out", "cli-out"]
    return {
        "snippet": [sys.executable, "-c", snippet],
        "cli": cli,
        "snippet, torch threads": [sys.executable, "-c", without_rule],
    }


def _run(command: list[str], cwd: str) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{command[:4]} failed:\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout + proc.stderr


def measure(repeats: int = 5, load: bool = True, ways: tuple[str, ...] = WAYS) -> dict:
    """Wall seconds of each of ``ways``, ``repeats`` times each in rotating order, with one
    core kept busy (``load``); returns the runs, medians and the machine's load."""
    from ..runtime import busy_cores

    commands = _commands(readme_snippet())
    busy_before = busy_cores(1.0)
    competitor = None
    if load:
        # a pure-Python loop on one core, which ends with this process however it ends
        loop = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"
        competitor = subprocess.Popen([sys.executable, "-c", loop])
        time.sleep(1.0)
    runs: dict[str, list[float]] = {way: [] for way in ways}
    cli_threads = None
    try:
        busy_during = busy_cores(1.0)
        with tempfile.TemporaryDirectory() as cwd:
            for r in range(repeats):
                order = ways[r % len(ways) :] + ways[: r % len(ways)]
                for way in order:
                    seconds, text = _run(commands[way], cwd)
                    runs[way].append(round(seconds, 2))
                    found = re.search(r"(\d+) threads?\)", text)
                    cli_threads = int(found.group(1)) if way == "cli" and found else cli_threads
                    print(
                        f"repeat {r + 1}/{repeats} {way:24s} {seconds:6.1f} s",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    medians = {way: statistics.median(times) for way, times in runs.items()}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cores": cores,
        "repeats": repeats,
        "one_core_kept_busy": load,
        "busy_cores_before": round(busy_before, 2),
        "busy_cores_during": round(busy_during, 2),
        "cli_threads": cli_threads,
        "python": platform.python_version(),
        "snippet": commands["snippet"][2],
        "runs_s": runs,
        "median_s": {way: round(m, 2) for way, m in medians.items()},
        **{f"{way} / cli": round(medians[way] / medians["cli"], 2) for way in ways},
    }


def to_markdown(result: dict) -> str:
    load = "one core kept busy by another process" if result["one_core_kept_busy"] else "no load"
    lines = [
        f"README Python snippet against `cmdvideo sample`, one video of the bundled pipeline each, "
        f"every run a fresh process timed start to exit; {result['cores']} cores, {load} (busy "
        f"cores before {result['busy_cores_before']}, during {result['busy_cores_during']}); "
        f"medians of {result['repeats']}.",
        "",
        "| way | median s | runs (s) | × cli |",
        "|---|---:|---|---:|",
    ]
    cli = result["median_s"]["cli"]
    for way in result["median_s"]:
        median = result["median_s"][way]
        runs = ", ".join(f"{s:.1f}" for s in result["runs_s"][way])
        lines.append(f"| {way} | {median:.1f} | {runs} | {median / cli:.2f} |")
    lines += ["", f"`cmdvideo sample` ran with {result['cli_threads']} thread(s)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="outputs/python-api", help="folder for python_api.*")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-load", action="store_true", help="no competing process")
    parser.add_argument(
        "--ways",
        nargs="+",
        choices=WAYS,
        default=list(WAYS),
        help="which to run (default: all three; always give cli)",
    )
    args = parser.parse_args(argv)
    result = measure(args.repeats, load=not args.no_load, ways=tuple(args.ways))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "python_api.json").write_text(json.dumps(result, indent=1))
    (out / "python_api.md").write_text(to_markdown(result))
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Seconds per video of the bundle at its old and new defaults, side by side in one process:
the settings are timed in turn, round after round, so that a change in the machine's load falls
on all of them alike; medians and ratios to the first setting.

python experiments/fast-sampling/speed.py [--model moving-shapes-tiny] [--threads 1]
    [--rounds 15] [--compile] [--out results/fast-sampling/speed.json]

Settings: the defaults of the bundle before this study (DDIM 25 steps per stage, content CFG 1,
motion CFG 3, no rescale) and the pipeline's own defaults; with --compile also the own
defaults with the denoisers compiled (CMDPipeline.compile; the compile time is reported).
One video of the default prompt at batch 1, seeded, after two warm-up calls.
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from cmdvideo.pipelines.cmd import CMDPipeline

PROMPT = "a red square moving left"
OLD = dict(
    num_inference_steps=25,
    content_guidance_scale=1.0,
    motion_guidance_scale=3.0,
    guidance_rescale=0.0,
)


def load(model: str, threads: int, sampler: str | None = None) -> CMDPipeline:
    pipe = CMDPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    pipe.set_threads(threads)
    if sampler is not None:
        pipe.set_sampler(sampler, "leading")
    return pipe


def one_video(pipe, kwargs: dict) -> float:
    start = time.perf_counter()
    pipe(prompt=PROMPT, generator=torch.Generator().manual_seed(0), output_type="pt", **kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="moving-shapes-tiny")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--out", default="results/fast-sampling/speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    own = load(args.model, args.threads)
    settings = {
        "old defaults (DDIM 25, CFG 1 / 3)": (load(args.model, args.threads, "ddim"), OLD),
        f"own defaults ({own.sampler_name()} {own.default_steps()}, CFG "
        f"{' / '.join(map(str, own.guidance_scales()))}, rescale {own.default_rescale()})": (
            own,
            {},
        ),
    }
    compile_seconds = None
    if args.compile:
        compiled = load(args.model, args.threads)
        start = time.perf_counter()
        compiled.compile()
        one_video(compiled, {})
        compile_seconds = round(time.perf_counter() - start, 1)
        settings["own defaults, compiled"] = (compiled, {})
    for pipe, kwargs in settings.values():
        for _ in range(2):
            one_video(pipe, kwargs)
    load_before = os.getloadavg()
    times = {name: [] for name in settings}
    for _ in range(args.rounds):
        for name, (pipe, kwargs) in settings.items():
            times[name].append(one_video(pipe, kwargs))
    medians = {name: statistics.median(t) for name, t in times.items()}
    first = next(iter(medians.values()))
    result = {
        "model": args.model,
        "threads": args.threads,
        "rounds": args.rounds,
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "seconds_per_video": {k: round(v, 4) for k, v in medians.items()},
        "speed_up_over_first": {k: round(first / v, 2) for k, v in medians.items()},
        "compile_seconds": compile_seconds,
        "torch": torch.__version__,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

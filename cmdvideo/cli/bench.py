"""``cmdvideo bench``: what CMD saves against full-video diffusion."""

from __future__ import annotations

import argparse
import json

from .common import add_compute_args, add_config_args, add_json_arg, device_of

DEFAULT_OUT = "outputs/bench"  # results/bench/ is refreshed on purpose, by its recipe


def cmd_bench(args: argparse.Namespace) -> int:
    from ..benchmarks.efficiency import run_benchmark
    from ..benchmarks.report import format_markdown

    result = run_benchmark(
        scale=args.scale,
        steps=args.steps,
        repeats=args.repeats,
        out=args.out,
        device=device_of(args),
        config=args.config,
        overrides=args.overrides,
        batch_size=args.batch_size,
        threads=args.threads,
        isolate=not args.in_process,
    )
    print(format_markdown(result))
    for path in result["files"].values():
        print(path)
    print(f"bench: {result['seconds']} s")
    if args.json:
        print(json.dumps(result))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="efficiency of CMD against full-video baselines (FLOPs, time, memory, training)",
        description="Same video size, same sampling steps. --scale paper: FLOPs per video at "
        "512x1024x16 (latent) of CMD, a ModelScope-architecture 3-D UNet and a full-video DiT, "
        "counted on the meta device (seconds; no memory or weights), beside the paper's "
        "Table 4. --scale tiny: time and peak memory per video and training seconds per step "
        "of the tiny CMD against a 3-D UNet with its content UNet's widths, measured here, "
        "each job in a fresh process (minutes). Writes efficiency.md/.json/.png to --out.",
    )
    p.add_argument(
        "--scale", choices=("paper", "tiny", "both"), default="both", help="default: %(default)s"
    )
    p.add_argument("--steps", type=int, default=50, help="DDIM steps per video (default 50)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    p.add_argument("--out", default=DEFAULT_OUT, help="output folder (default %(default)s)")
    add_json_arg(p)
    add_config_args(p)  # the tiny-scale config
    p.add_argument(
        "--batch-size", type=int, default=None, help="training batch (default: the config's)"
    )
    p.add_argument(
        "--in-process",
        action="store_true",
        help="measure in this process (quicker; peak memory is then not measured)",
    )
    add_compute_args(p)
    p.set_defaults(func=cmd_bench)

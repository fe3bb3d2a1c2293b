"""``cmdvideo teach``: new words and LoRA adapters on a frozen pipeline, from a few clips."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import add_compute_args, add_config_args, add_json_arg


def _fields(args: argparse.Namespace) -> dict:
    """The config fields the flags set."""
    fields: dict = {}
    if args.steps is not None:
        if args.steps < 1:
            raise ValueError(f"--steps must be >= 1, got {args.steps}")
        fields.setdefault("train", {})["max_steps"] = args.steps
    if args.rank is not None:
        if args.rank < 1:
            raise ValueError(f"--rank must be >= 1, got {args.rank}")
        fields.setdefault("teach", {})["rank"] = args.rank
    if args.stage is not None:
        fields.setdefault("teach", {})["stage"] = args.stage
    return fields


def check_teach(args: argparse.Namespace) -> None:
    """Before torch loads: the data path, the config and every override."""
    from ..config import load_config

    if not Path(args.data).exists():
        raise FileNotFoundError(
            f"--data {args.data} does not exist; give a CSV/JSONL index (path, caption) or a "
            "folder of clips with a caption each"
        )
    run = Path(args.out) / "teaching" / "config.yaml"
    if not (args.resume and run.is_file()):
        load_config(args.config, args.overrides, _fields(args))


def cmd_teach(args: argparse.Namespace) -> int:
    from ..training.run import run_config
    from ..training.teach import TEACHING, teach

    run_dir = Path(args.out) / TEACHING
    config = run_config(args.config, args.overrides, run_dir, args.resume, _fields(args))
    result = teach(args.data, args.out, config, model=args.model, resume=args.resume)
    plan = result.plan
    report = {
        "adapter": str(result.out),
        "words": plan.words,
        "lora": plan.lora,
        "loss_ratios": {k: round(v, 3) for k, v in plan.ratios.items()},
        "clips": result.clips,
        "skipped": result.skipped,
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "adapter_bytes": result.adapter_bytes,
    }
    print(plan.describe())
    for path, reason in result.skipped.items():
        print(f"skipped {path}: {reason}")
    print(
        f"taught {result.steps} steps on {result.clips} clips in {result.seconds:.0f} s; "
        f"adapter {result.adapter_bytes / 1e6:.2f} MB: {result.out}"
    )
    print(f'use it: cmdvideo sample --lora {result.out} --prompt "...{plan.words[0]}..."')
    if args.json:
        print(json.dumps(report))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "teach",
        help="teach the model a new look or motion from a few captioned clips (an adapter)",
        description="Learn the new words of a few captioned clips on a frozen pipeline: word "
        "embeddings in its text encoders and LoRA layers (diffusers' conventions) on the content "
        "model (a new look), the motion model (a new motion) or both, decided from the clips. "
        "The base never changes; the adapter folder loads with --lora on every generating "
        "command and pipe.load_lora_weights in Python. Minutes on a CPU (docs/teach.md).",
    )
    p.add_argument(
        "--data",
        required=True,
        help="the clips: a CSV/JSONL index with path and caption columns, a folder holding one, "
        "or a folder of clips with clip.txt captions beside clip.mp4",
    )
    p.add_argument("--out", required=True, help="the adapter folder to write")
    p.add_argument(
        "--model", default="moving-shapes-tiny", help="the base pipeline (default: %(default)s)"
    )
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: 1200)")
    p.add_argument("--rank", type=int, default=None, help="LoRA rank (default: 8)")
    p.add_argument(
        "--stage",
        choices=("auto", "content", "motion", "both"),
        default=None,
        help="which denoisers get LoRA layers (default auto: decided from the clips)",
    )
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    add_config_args(p, default="teach")
    add_compute_args(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_teach, check=check_teach)

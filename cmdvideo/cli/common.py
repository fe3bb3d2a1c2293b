"""What every verb group of the command line shares: argument groups (defined once), devices,
threads, result reporting, and loading a pipeline with its sampler."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..runtime import default_threads

# Generation arguments whose flag is not --their-name (InvalidArgument.arg -> flag).
FLAGS = {
    "class_labels": "--class",
    "num_inference_steps": "--steps",
    "guidance_scale": "--guidance",
    "num_videos_per_prompt": "--num-videos",
    "sampler": "--sampler",
}


def flag_of(arg: str) -> str:
    """The command-line flag of a generation argument (``num_inference_steps`` -> ``--steps``)."""
    return FLAGS.get(arg, "--" + arg.replace("_", "-"))


# -- argument groups -----------------------------------------------------------------------


def add_config_args(p: argparse.ArgumentParser, default: str | None = "tiny") -> None:
    from ..config import available_configs

    p.add_argument(
        "--config",
        default=default,
        help=f"YAML config: a path or a preset name ({', '.join(available_configs())}); "
        "default: %(default)s",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.batch_size=8 (repeatable)",
    )


def add_data_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default=None,
        help="'moving-shapes' (embedded, generated on the fly), a folder of videos (flat or "
        "UCF-101 layout), a CSV/JSONL index with path and caption columns, or a latent cache; "
        "default: the config's",
    )


def add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")


def add_threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: $OMP_NUM_THREADS if set, else the cores no other "
        "process keeps busy, shared among the processes of a multi-process run; see "
        "docs/efficiency.md)",
    )


def add_json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def add_compute_args(p: argparse.ArgumentParser) -> None:
    """--device and --threads: every command that runs a model."""
    add_device_arg(p)
    add_threads_arg(p)


def add_sampling_args(p: argparse.ArgumentParser) -> None:
    """How a pipeline samples: steps, guidance, CFG rescale, sampler."""
    from ..pipelines.samplers import SAMPLERS

    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="denoising steps per stage (default: the pipeline's own)",
    )
    p.add_argument(
        "--guidance",
        type=float,
        default=None,
        help="CFG scale of both stages, >= 0 (1 = no guidance; default: the "
        "pipeline's own per stage)",
    )
    p.add_argument(
        "--guidance-rescale",
        type=float,
        default=None,
        help="CFG rescale phi in [0, 1] of both stages (default: the pipeline's own; "
        "0 = plain CFG)",
    )
    p.add_argument(
        "--sampler",
        "--scheduler",
        dest="sampler",
        default=None,
        choices=sorted(SAMPLERS),
        help="sampler of both stages, a diffusers scheduler by name (default: the pipeline's "
        "own; dpm = DPM-Solver++; --scheduler is its old name, kept for a release)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the two denoisers (the first video waits a minute or more for "
        "the compiler; worth it for many videos)",
    )
    add_lora_arg(p)


def add_lora_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lora",
        action="append",
        default=[],
        type=lora_spec,
        metavar="DIR[:SCALE]",
        help="an adapter from `cmdvideo teach` (its new words, its LoRA layers at SCALE, "
        "default 1); repeatable: a taught shape doing a taught motion",
    )


def lora_spec(text: str) -> tuple[str, float | None]:
    """``DIR`` or ``DIR:SCALE`` -> (DIR, SCALE or None), the folder checked to be an adapter."""
    from ..pipelines.adapters import read_adapter

    path, scale = text, None
    head, _, tail = text.rpartition(":")
    if head:
        try:
            path, scale = head, float(tail)
        except ValueError:
            path = text
    try:
        read_adapter(path)
    except (FileNotFoundError, ValueError) as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return path, scale


# -- runtime -------------------------------------------------------------------------------


def device_of(args: argparse.Namespace) -> str:
    import torch

    device = getattr(args, "device", None)
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device here; use --device cpu")
    return device


def apply_threads(args: argparse.Namespace) -> int | None:
    """Set torch's CPU threads for commands that take --threads: the option, else
    ``OMP_NUM_THREADS`` when the user set it, else :func:`default_threads`; returns the number."""
    if not hasattr(args, "threads"):
        return None
    import torch

    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    env = os.environ.get("OMP_NUM_THREADS", "")
    threads = args.threads or (int(env) if env.isdigit() and int(env) > 0 else default_threads())
    torch.set_num_threads(threads)
    args.threads = threads
    return threads


def report(result: dict, as_json: bool, lines: list[str]) -> None:
    """A command's result: readable lines, or (``--json``) one JSON object as the last line."""
    print(json.dumps(result) if as_json else "\n".join(lines))


def check_output_folder(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as an output folder that can be written: refused up front when it names an
    existing file, so that no generation runs only to fail at the end."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{flag} {path} is a file; give a folder (it is created if needed)")
    return path


def check_before_loading(args: argparse.Namespace, **values):
    """Check a generating command's arguments (``cmdvideo.pipelines.arguments``: the one table
    of bounds) against the pipeline of --model, reading only its JSON configs: every mistake is
    refused before any weights load, and before torch is imported (a verb's ``check``, which
    ``cli.main`` runs before anything else). Returns the
    :class:`~cmdvideo.pipelines.arguments.PipelineSpec` (None for a hub id)."""
    from ..pipelines.arguments import PipelineSpec, check_arguments

    spec = PipelineSpec.from_folder(args.model)
    check_arguments(spec, **values)
    return spec


def load_pipeline(args: argparse.Namespace, progress: bool = True):
    """(pipeline, sampling): the pipeline of --model on --device with --sampler, --lora and
    --threads' threads, and the settings its calls resolve --steps, --guidance and
    --guidance-rescale to (:class:`~cmdvideo.pipelines.sampling.Sampling`, the pipeline's own
    resolution: what reports print). Check the arguments first (:func:`check_before_loading`)."""
    from ..pipelines.cmd import CMDPipeline
    from ..pipelines.sampling import Sampling

    if getattr(args, "quiet", False):  # sample/edit --quiet: no "Loading pipeline components" bar
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.disable_progress_bar()
    pipe = CMDPipeline.from_pretrained(args.model).to(device_of(args))
    if args.sampler is not None:
        pipe.set_sampler(args.sampler)
    args.sampler = pipe.sampler_name()  # what it samples with, for the reports
    for path, scale in getattr(args, "lora", []):
        pipe.load_lora_weights(path, scale=scale)
    if getattr(args, "compile", False):
        pipe.compile()
    pipe.set_progress_bar_config(disable=not progress)
    pipe.set_threads(args.threads)  # apply_threads chose them; the same in every call
    sampling = Sampling.of(
        pipe,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        guidance_rescale=args.guidance_rescale,
    )
    return pipe, sampling

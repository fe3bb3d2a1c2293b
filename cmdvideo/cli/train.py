"""``cmdvideo train autoencoder|content|motion|classifier`` and ``cmdvideo calibrate``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .common import add_compute_args, add_config_args, add_data_arg, device_of

EXIT_DIVERGED = 3


def _add_train_args(p: argparse.ArgumentParser, default_config: str = "tiny") -> None:
    add_config_args(p, default=default_config)
    add_data_arg(p)
    p.add_argument(
        "--out", required=True, help="output folder (model, checkpoints, previews, metrics)"
    )
    p.add_argument(
        "--max-steps", type=int, default=None, help="optimizer steps (default: the config's)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the latest checkpoint in --out"
    )
    add_compute_args(p)


def _add_diffusion_train_args(p: argparse.ArgumentParser) -> None:
    """What `train content` and `train motion` share."""
    _add_train_args(p)
    p.add_argument("--autoencoder", required=True, help="folder from `cmdvideo train autoencoder`")
    p.add_argument(
        "--text-encoder",
        default=None,
        help="'builtin' (a word encoder learned with this model; the tiny config's choice) or "
        "a frozen CLIP text model / SD repo, local directory or hub id",
    )


def check_train(args: argparse.Namespace) -> None:
    """Before torch loads (`main`): the config file and every override, so that a broken or
    unknown value is refused at once."""
    from ..config import load_config

    if not (args.resume and (Path(args.out) / "config.yaml").is_file()):
        load_config(args.config, args.overrides, _flag_fields(args))


def _flag_fields(args: argparse.Namespace) -> dict:
    """The config fields the flags set, as values (not re-read as YAML strings)."""
    if args.max_steps is not None and args.max_steps < 1:
        raise ValueError(f"--max-steps must be >= 1, got {args.max_steps}")
    fields: dict = {}
    put = lambda section, key, value: fields.setdefault(section, {}).__setitem__(key, value)  # noqa: E731
    if args.data:
        put("data", "source", str(args.data))
    if args.max_steps is not None:
        put("train", "max_steps", args.max_steps)
    if getattr(args, "init", None):
        put(args.stage, "init", str(args.init))
    if getattr(args, "text_encoder", None):
        put(args.stage, "text_encoder", str(args.text_encoder))
    if getattr(args, "frames", False):
        put("content", "target", "frames")
    return fields


def cmd_train(args: argparse.Namespace) -> int:
    """Every `train` subcommand: flags -> config overrides, then one training run."""
    from ..training.follow import explicit_settings
    from ..training.run import run_config, train
    from ..training.trainer import TrainingDivergedError

    config = run_config(args.config, args.overrides, args.out, args.resume, _flag_fields(args))
    if args.device is not None:  # the trainer's device comes from Accelerate
        device_of(args)  # (checks that a CUDA device exists when one is asked for)
        os.environ["ACCELERATE_USE_CPU"] = "true" if args.device == "cpu" else "false"
    try:
        result = train(
            args.stage,
            config,
            args.out,
            args.resume,
            getattr(args, "autoencoder", None),
            explicit=explicit_settings(args.overrides),
        )
    except TrainingDivergedError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    if not result.is_main:  # one report per run, from the main process
        return 0
    out = Path(args.out)
    print(f"trained {result.steps} steps in {result.seconds:.1f} s")
    for note in result.notes:
        print(note)
    if result.calibration:
        print(
            f"motion_scaling_factor: {result.calibration['factor']} (1 / std of motion latents "
            f"over {result.calibration['num_videos']} videos)"
        )
    print(f"model:    {out / result.stage}")
    print(f"previews: {out / 'previews'}")
    print(f"metrics:  {out / 'metrics.jsonl'}  curve: {out / 'training_curve.png'}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from ..data import build_dataset
    from ..training.calibrate import calibrate_folder
    from .evaluate import run_config_of

    model_dir = Path(args.autoencoder)
    config = run_config_of(model_dir, args)
    dataset = build_dataset(config.data, train=True, source=args.data)
    result = calibrate_folder(model_dir, dataset, args.num_videos, device_of(args))
    print(
        f"motion_scaling_factor: {result['factor']} (1 / std of motion latents over "
        f"{result['num_videos']} videos)"
    )
    return 0


def register(sub) -> None:
    train = sub.add_parser("train", help="train a CMD stage").add_subparsers(
        dest="stage", required=True
    )
    p = train.add_parser(
        "autoencoder",
        help="train the video autoencoder (video -> content frame + motion latent)",
        description="Train the CMD video autoencoder on one device, or many under `accelerate "
        "launch` / torchrun. Ends by measuring the motion scaling factor.",
    )
    _add_train_args(p)
    p.add_argument(
        "--init",
        default=None,
        help="start from this trained autoencoder folder (fine-tuning) instead of random weights",
    )
    p.set_defaults(func=cmd_train, check=check_train)

    p = train.add_parser(
        "vae",
        help="train a frame VAE (AutoencoderKL) for latent mode on your data",
        description="Train a small diffusers AutoencoderKL on single frames of the training "
        "videos (vae.* settings), saved as OUT/vae in diffusers' layout with per-channel "
        "latent statistics; then `--set autoencoder.vae=OUT --set autoencoder.vae_subfolder=vae` "
        "trains the CMD autoencoder on its latents, as on Stable Diffusion's.",
    )
    _add_train_args(p)
    p.set_defaults(func=cmd_train, check=check_train)

    p = train.add_parser(
        "classifier",
        help="train the moving-shapes video classifier of the offline metrics",
        description="Train the small 3-D CNN behind fd_moving_shapes and the motion accuracy of "
        "generated videos (cmdvideo/models/classifier.py) on real moving-shapes videos. The "
        "package ships one: scripts/train_classifier.sh retrains it.",
    )
    _add_train_args(p, default_config="moving-shapes-classifier")
    p.set_defaults(func=cmd_train, check=check_train)
    _register_diffusion_stages(train)
    _register_calibrate(sub)


def _register_diffusion_stages(train) -> None:
    """`train motion` and `train content`."""
    p = train.add_parser(
        "motion",
        help="train the motion DiT on a trained autoencoder's motion latents",
        description="Train the motion diffusion transformer (paper §3.3) on the motion latents "
        "of a frozen autoencoder, guided by its content frames and the class label and/or caption.",
    )
    _add_diffusion_train_args(p)
    p.set_defaults(func=cmd_train, check=check_train)

    p = train.add_parser(
        "content",
        help="train the content-frame diffusion model (an image UNet) on content frames",
        description="Train the content-frame image diffusion model (paper §3.2) on the content "
        "frames of a frozen autoencoder; --init starts from a pretrained UNet2DConditionModel, "
        "--frames trains on single video frames instead (image pretraining).",
    )
    _add_diffusion_train_args(p)
    p.add_argument(
        "--init", default=None, help="pretrained UNet2DConditionModel: directory or hub id"
    )
    p.add_argument("--frames", action="store_true", help="train on single frames (pretraining)")
    p.set_defaults(func=cmd_train, check=check_train)


def _register_calibrate(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="measure a trained autoencoder's motion scaling factor",
        description="Set motion_scaling_factor = 1 / std of the motion latents over training "
        "videos (stored in the autoencoder config; `train autoencoder` does this at the end).",
    )
    p.add_argument("--autoencoder", required=True, help="folder from `cmdvideo train autoencoder`")
    add_data_arg(p)
    add_config_args(p, default=None)
    p.add_argument("--num-videos", type=int, default=256)
    add_compute_args(p)
    p.set_defaults(func=cmd_calibrate)

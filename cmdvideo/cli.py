"""The ``cmdvideo`` command.

cmdvideo train autoencoder --config tiny --data moving-shapes --out runs/ae
cmdvideo eval autoencoder --model runs/ae --num-videos 256 --json
cmdvideo data preview --data moving-shapes --out shapes.gif
cmdvideo demo
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

EXIT_DIVERGED = 3


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _add_config_args(p: argparse.ArgumentParser, default: str | None = "tiny") -> None:
    from .config import available_configs

    p.add_argument(
        "--config",
        default=default,
        help=f"YAML config: a path or a preset name ({', '.join(available_configs())}); default: %(default)s",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.batch_size=8 (repeatable)",
    )


def _add_data_arg(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument(
        "--data",
        required=required,
        default=None,
        help="'moving-shapes' (embedded, generated on the fly) or a folder of videos (flat or "
        "UCF-101 layout) or a CSV/JSONL index with path and caption columns; default: the config's",
    )


def _add_train_args(p: argparse.ArgumentParser) -> None:
    _add_config_args(p)
    _add_data_arg(p)
    p.add_argument(
        "--out", required=True, help="output folder (model, checkpoints, previews, metrics)"
    )
    p.add_argument(
        "--max-steps", type=int, default=None, help="optimizer steps (default: the config's)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the latest checkpoint in --out"
    )


# -- train ---------------------------------------------------------------------------------


def _train(args: argparse.Namespace, make_stage) -> int:
    """Shared by every `train` subcommand: config, data, trainer, summary."""
    from .config import load_config
    from .data import build_train_and_eval, collate_videos
    from .training.trainer import Trainer, TrainingDivergedError

    out = Path(args.out)
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.source={args.data}")
    if args.max_steps is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    saved = out / "config.yaml"
    if args.resume and saved.is_file():
        config = load_config(saved, overrides)  # the run's own settings, plus explicit changes
    else:
        config = load_config(args.config, overrides)

    train_set, eval_set = build_train_and_eval(config.data)
    preview = collate_videos([eval_set[i] for i in range(min(4, len(eval_set)))])
    stage = make_stage(config, train_set)
    trainer = Trainer(stage, train_set, config, out, preview_batch=preview)
    start = time.perf_counter()
    try:
        trainer.train(resume=args.resume)
    except TrainingDivergedError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    print(f"trained {config.train.max_steps} steps in {time.perf_counter() - start:.1f} s")
    if stage.name == "autoencoder":
        _calibrate(out, train_set)
    print(f"model:    {out / stage.name}")
    print(f"previews: {out / 'previews'}")
    print(f"metrics:  {out / 'metrics.jsonl'}  curve: {out / 'training_curve.png'}")
    return 0


def _calibrate(model_dir: Path, dataset, num_videos: int = 256) -> float:
    """Measure and store the motion scaling factor of a trained autoencoder folder."""
    from .models.codec import VideoCodec, calibrate_motion_scale

    codec = VideoCodec.from_pretrained(model_dir)
    factor = calibrate_motion_scale(codec, dataset, num_videos, device=_default_device())
    codec.to("cpu").save_pretrained(model_dir)
    print(f"motion_scaling_factor: {factor} (1 / std of motion latents over {num_videos} videos)")
    return factor


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .data import build_dataset

    model_dir = Path(args.autoencoder)
    config = _run_config(model_dir, args)
    _calibrate(model_dir, build_dataset(config.data, train=True, source=args.data), args.num_videos)
    return 0


def cmd_train_autoencoder(args: argparse.Namespace) -> int:
    from .training.stages import AutoencoderStage

    return _train(args, lambda config, data: AutoencoderStage(config))


def _train_diffusion(args: argparse.Namespace, stage_cls) -> int:
    from .models.codec import VideoCodec

    codec = VideoCodec.from_pretrained(args.autoencoder)
    if args.text_encoder:
        args.overrides = [*args.overrides, f"{stage_cls.section}.text_encoder={args.text_encoder}"]

    def make_stage(config, data):
        from .data import dataset_captions

        section = getattr(config, stage_cls.section)
        captions = dataset_captions(data) if "text" in section.condition else None
        return stage_cls(
            config, codec, num_classes=len(getattr(data, "classes", [])), captions=captions
        )

    return _train(args, make_stage)


def cmd_train_motion(args: argparse.Namespace) -> int:
    from .training.stages import MotionStage

    return _train_diffusion(args, MotionStage)


def cmd_train_content(args: argparse.Namespace) -> int:
    from .training.stages import ContentStage

    if args.init:
        args.overrides = [*args.overrides, f"content.init={args.init}"]
    if args.frames:
        args.overrides = [*args.overrides, "content.target=frames"]
    return _train_diffusion(args, ContentStage)


# -- eval ----------------------------------------------------------------------------------


def _run_config(model_dir: Path, args: argparse.Namespace):
    """The data settings to evaluate with: --config if given, else the training run's own."""
    from .config import load_config

    saved = model_dir / "config.yaml"
    if args.config is None and saved.is_file():
        return load_config(saved, args.overrides)
    return load_config(args.config or "tiny", args.overrides)


def cmd_eval_autoencoder(args: argparse.Namespace) -> int:
    from .data import build_dataset
    from .evaluation.recon import evaluate_reconstruction
    from .models.codec import VideoCodec

    model_dir = Path(args.model)
    codec = VideoCodec.from_pretrained(model_dir)
    config = _run_config(model_dir, args)
    dataset = build_dataset(config.data, train=False, source=args.data)
    start = time.perf_counter()
    result = evaluate_reconstruction(
        codec,
        dataset,
        num_videos=args.num_videos,
        batch_size=args.batch_size,
        device=args.device or _default_device(),
        progress=not args.json,
    )
    result.update(
        data=args.data or config.data.source,
        split="held-out" if (args.data or config.data.source) == "moving-shapes" else "center-crop",
        seconds=round(time.perf_counter() - start, 2),
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(f"videos:            {result['num_videos']} ({result['data']}, {result['split']})")
        print(
            f"PSNR:              {result['psnr']:.2f} dB (std over videos {result['psnr_std']:.2f})"
        )
        print(f"SSIM:              {result['ssim']:.4f}")
        if result["psnr_by_class"]:
            worst = sorted(result["psnr_by_class"].items(), key=lambda kv: kv[1])
            print("PSNR by class:     " + ", ".join(f"{k} {v:.1f}" for k, v in worst))
        print(
            f"compression:       {result['compression_ratio']:.1f}x "
            f"({result['video_numbers']} -> {result['content_frame_numbers']} content + "
            f"{result['motion_latent_numbers']} motion numbers)"
        )
        print(f"time:              {result['seconds']:.1f} s")
    return 0


# -- data ----------------------------------------------------------------------------------


def cmd_data_preview(args: argparse.Namespace) -> int:
    from .config import load_config
    from .data import build_dataset
    from .data.video_io import write_frame_grid, write_video

    config = load_config(args.config, args.overrides)
    dataset = build_dataset(config.data, train=False, source=args.data)
    n = min(args.num_videos, len(dataset))
    items = [dataset[i] for i in range(n)]
    out = Path(args.out)
    import torch

    grid = torch.cat([item["video"] for item in items], dim=-1)  # videos side by side
    path = write_video(out.with_suffix(".gif"), grid, upscale=args.upscale)
    png = write_frame_grid(
        out.with_suffix(".png"), [item["video"] for item in items], upscale=args.upscale
    )
    for i, item in enumerate(items):
        print(f"{i}: label={item['label']} caption={item.get('caption', '')!r}")
    print(f"wrote {path} and {png}")
    return 0


# -- demo ----------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """Until generation lands: train the tiny autoencoder briefly, evaluate it, show previews."""
    out = Path(args.out)
    train_args = argparse.Namespace(
        config="tiny",
        overrides=[
            f"train.preview_every={args.max_steps}",
            f"train.checkpoint_every={args.max_steps}",
        ],
        data="moving-shapes",
        out=str(out),
        max_steps=args.max_steps,
        resume=False,
    )
    code = cmd_train_autoencoder(train_args)
    if code:
        return code
    eval_args = argparse.Namespace(
        model=str(out),
        data=None,
        config=None,
        overrides=[],
        num_videos=args.num_videos,
        batch_size=16,
        device=None,
        json=False,
    )
    print(f"\nheld-out reconstruction after {args.max_steps} steps:")
    return cmd_eval_autoencoder(eval_args)


# -- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cmdvideo",
        description="Efficient video diffusion by content-frame / motion-latent decomposition (CMD).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a CMD stage").add_subparsers(
        dest="stage", required=True
    )
    p = train.add_parser(
        "autoencoder",
        help="train the video autoencoder (video -> content frame + motion latent)",
        description="Train the CMD video autoencoder on one device, or many under `accelerate launch`.",
    )
    _add_train_args(p)
    p.set_defaults(func=cmd_train_autoencoder)

    p = train.add_parser(
        "motion",
        help="train the motion DiT on a trained autoencoder's motion latents",
        description="Train the motion diffusion transformer (paper §3.3) on the motion latents "
        "of a frozen autoencoder, guided by its content frames and the class label.",
    )
    _add_train_args(p)
    p.add_argument("--autoencoder", required=True, help="folder from `cmdvideo train autoencoder`")
    p.add_argument(
        "--text-encoder",
        default=None,
        help="frozen text encoder for text conditioning: the content run folder (built-in "
        "encoder) or a CLIP text model / SD repo, local directory or hub id",
    )
    p.set_defaults(func=cmd_train_motion)

    p = train.add_parser(
        "content",
        help="train the content-frame diffusion model (an image UNet) on content frames",
        description="Train the content-frame image diffusion model (paper §3.2) on the content "
        "frames of a frozen autoencoder; --init starts from a pretrained UNet2DConditionModel, "
        "--frames trains on single video frames instead (image pretraining).",
    )
    _add_train_args(p)
    p.add_argument("--autoencoder", required=True, help="folder from `cmdvideo train autoencoder`")
    p.add_argument(
        "--init", default=None, help="pretrained UNet2DConditionModel: directory or hub id"
    )
    p.add_argument("--frames", action="store_true", help="train on single frames (pretraining)")
    p.add_argument(
        "--text-encoder",
        default=None,
        help="'builtin' (learned here; the default for text conditioning) or a frozen CLIP "
        "text model / SD repo, local directory or hub id",
    )
    p.set_defaults(func=cmd_train_content)

    p = sub.add_parser(
        "calibrate",
        help="measure a trained autoencoder's motion scaling factor",
        description="Set motion_scaling_factor = 1 / std of the motion latents over training "
        "videos (stored in the autoencoder config; `train autoencoder` does this at the end).",
    )
    p.add_argument("--autoencoder", required=True, help="folder from `cmdvideo train autoencoder`")
    _add_data_arg(p)
    _add_config_args(p, default=None)
    p.add_argument("--num-videos", type=int, default=256)
    p.set_defaults(func=cmd_calibrate)

    ev = sub.add_parser("eval", help="evaluate a trained model").add_subparsers(
        dest="stage", required=True
    )
    p = ev.add_parser(
        "autoencoder",
        help="reconstruction PSNR/SSIM and compression ratio",
        description="Reconstruction PSNR and SSIM (per frame, averaged; frames in [0,1]) on "
        "held-out videos, and the compression ratio of (content frame + motion latent).",
    )
    p.add_argument("--model", required=True, help="folder written by `cmdvideo train autoencoder`")
    _add_data_arg(p)
    _add_config_args(p, default=None)
    p.add_argument(
        "--num-videos", type=int, default=256, help="videos to evaluate (default %(default)s)"
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=cmd_eval_autoencoder)

    data = sub.add_parser("data", help="look at a dataset").add_subparsers(
        dest="action", required=True
    )
    p = data.add_parser(
        "preview", help="write a GIF and a PNG grid of the first videos of a dataset"
    )
    _add_config_args(p)
    _add_data_arg(p)
    p.add_argument(
        "--out", default="data_preview", help="output path stem (.gif and .png are written)"
    )
    p.add_argument("--num-videos", type=int, default=8)
    p.add_argument("--upscale", type=int, default=4)
    p.set_defaults(func=cmd_data_preview)

    p = sub.add_parser(
        "demo",
        help="train + evaluate the tiny autoencoder on moving-shapes (a few minutes on CPU)",
        description="Trains the tiny CMD autoencoder on the embedded moving-shapes dataset for a "
        "few hundred steps, evaluates it on held-out videos and writes previews.",
    )
    p.add_argument("--out", default="outputs/demo")
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--num-videos", type=int, default=64)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("accelerate", "diffusers", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

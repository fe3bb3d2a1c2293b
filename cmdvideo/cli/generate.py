"""``cmdvideo sample``, ``cmdvideo demo`` and ``cmdvideo pipeline assemble``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import (
    PIPELINE_FLAGS,
    add_compute_args,
    add_sampling_args,
    load_pipeline,
)


def cmd_pipeline_assemble(args: argparse.Namespace) -> int:
    from ..data.samples import check_output_folder
    from ..pipelines.assemble import assemble_pipeline, sampling_defaults

    check_output_folder(args.out)
    try:
        defaults = sampling_defaults(args.content_guidance, args.motion_guidance, args.steps,
                                     args.guidance_rescale)  # fmt: skip
    except ValueError as err:  # name the flags, not the stored keys
        flags = {"content_guidance_scale": "--content-guidance", "motion_guidance_scale":
                 "--motion-guidance", "num_inference_steps": "--steps",
                 "guidance_rescale": "--guidance-rescale"}  # fmt: skip
        message = str(err)
        for key, flag in flags.items():
            message = message.replace(key, flag)
        raise ValueError(message) from None
    pipe = assemble_pipeline(args.autoencoder, args.content, args.motion, defaults)
    pipe.save_pretrained(args.out)
    print(f"pipeline: {args.out} (defaults: guidance content {args.content_guidance}, motion "
          f"{args.motion_guidance}, rescale {args.guidance_rescale}; {args.steps} steps per "
          "stage)")  # fmt: skip
    for name, module in pipe.components.items():
        if hasattr(module, "parameters"):
            count = sum(p.numel() for p in module.parameters())
            print(f"  {name:20s} {count / 1e6:7.2f} M parameters")
    return 0


def _conditions(args: argparse.Namespace) -> tuple[list[str] | None, list | None, list[str]]:
    """(prompts, class labels, one name per condition for prompts.txt) from the options."""
    if getattr(args, "image", None) and not args.prompt and args.class_label is None:
        return None, None, [f"image {args.image}"]  # the image alone guides the motion
    if not args.prompt and args.class_label is None and not args.unconditional:
        raise ValueError("give --prompt TEXT and/or --class N|NAME (or --unconditional)")
    if args.unconditional and (args.prompt or args.class_label is not None):
        raise ValueError("--unconditional takes no --prompt and no --class")
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
    return prompts, labels, names


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from ..data.samples import check_output_folder, write_sample_folder

    out_dir = check_output_folder(args.out)
    if args.upscale < 1:
        raise ValueError(f"--upscale must be an integer >= 1, got {args.upscale}")
    if args.strength is not None and not args.image:
        raise ValueError("--strength refines an --image; give --image PATH")
    if args.strength is not None:
        from ..pipelines.decomposition import check_strength

        check_strength(args.strength, "--strength")  # before the pipeline loads
    if args.image and not Path(args.image).is_file():
        raise FileNotFoundError(f"--image {args.image}: no such file")
    if args.image and args.num_videos != 1:
        raise ValueError("--num-videos: one video per --image and prompt (repeat --prompt)")
    prompts, labels, names = _conditions(args)
    pipe = load_pipeline(args, progress=not args.quiet)
    call = dict(prompt=prompts, class_labels=labels, num_inference_steps=args.steps,
                guidance_scale=args.guidance, guidance_rescale=args.guidance_rescale,
                num_videos_per_prompt=args.num_videos)  # fmt: skip
    call.update(num_frames=args.num_frames)
    pipe.check_inputs(**call, names=PIPELINE_FLAGS, overlap=args.overlap)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    if args.image:
        call.pop("num_videos_per_prompt")
        out = pipe.image_to_video(args.image, **call, strength=args.strength or 0.0,
                                  overlap=args.overlap, generator=generator, output_type="np")  # fmt: skip
    else:
        out = pipe(**call, overlap=args.overlap, generator=generator, output_type="np")
    seconds = time.perf_counter() - start
    names = [n for n in names for _ in range(args.num_videos)]
    paths = write_sample_folder(out_dir, out.frames, names, upscale=args.upscale)
    print("\n".join(str(p) for p in paths))
    n, t, h, w, _ = out.frames.shape
    print(f"{n} videos ({t} frames, {h}x{w}) in {seconds:.1f} s ({seconds / n:.2f} s per "
          f"video, {args.steps} {args.scheduler} steps per stage, device {pipe.device}, "
          f"{args.threads} thread{'s' if args.threads != 1 else ''})")  # fmt: skip
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The bundled pipeline's gallery: one video per prompt (each with its own seed), mp4 + gif,
    index.html, and a summary (seconds per video, FLOPs against the full-video baseline)."""
    import torch
    from tqdm.auto import tqdm

    from ..benchmarks.flops import pipeline_flops_comparison
    from ..data.moving_shapes import DEMO_PROMPTS
    from ..data.samples import check_output_folder, video_stem, write_gallery, write_sample_video

    total_start = time.perf_counter()
    out = check_output_folder(args.out)
    prompts = list(DEMO_PROMPTS) + list(args.prompt)
    pipe = load_pipeline(args, progress=False)
    pipe.check_inputs(prompt=prompts, names=PIPELINE_FLAGS)  # every prompt, before the first video
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, prompt in enumerate(tqdm(prompts, desc="demo", unit="video")):
        seed = args.seed + i
        start = time.perf_counter()
        frames = pipe(
            prompt=prompt, num_inference_steps=args.steps, guidance_scale=args.guidance,
            guidance_rescale=args.guidance_rescale, generator=torch.Generator().manual_seed(seed),
        ).frames  # fmt: skip
        seconds = time.perf_counter() - start
        write_sample_video(out, i, frames[0])
        entries.append({"file": video_stem(i), "prompt": prompt, "seed": seed, "seconds": seconds})
    content_g, motion_g = pipe.guidance_scales(args.guidance)
    rescale = pipe.default_rescale(args.guidance_rescale)
    page = write_gallery(
        out, entries, f"cmdvideo demo — {args.model}",
        f"Model {args.model}, {args.steps} {args.scheduler} steps per stage, guidance {content_g} "
        f"(content) and {motion_g} (motion), rescale {rescale}. Each video: content frame by "
        "image diffusion, motion latent by the motion DiT guided by it, decoded by the CMD "
        "autoencoder.",
    )  # fmt: skip
    per_video = sum(e["seconds"] for e in entries) / len(entries)
    print(f"{len(entries)} videos in {out}/ (mp4 + gif each), gallery: {page}")
    print(f"seconds per video: {per_video:.2f} ({args.steps} {args.scheduler} steps per stage, "
          f"guidance: content {content_g}, motion {motion_g}, rescale {rescale}; {pipe.device}, "
          f"{args.threads} thread{'s' if args.threads != 1 else ''})")  # fmt: skip
    flops = pipeline_flops_comparison(pipe, args.steps)
    print(f"FLOPs per video: CMD {flops['cmd_gflops']:.1f} G against {flops['unet3d_gflops']:.1f} "
          f"G for a 3-D UNet of the same widths on the whole video "
          f"({flops['unet3d_gflops'] / flops['cmd_gflops']:.1f}x), {args.steps} steps, no CFG")  # fmt: skip
    print(f"demo: {time.perf_counter() - total_start:.1f} s in all")
    return 0


def register(sub) -> None:
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
    p.add_argument("--content-guidance", type=float, default=4.0,
                   help="default CFG scale of the content stage (stored in the pipeline)")  # fmt: skip
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
    p.add_argument("--model", required=True,
                   help="pipeline folder (`cmdvideo pipeline assemble`), moving-shapes-tiny, or a "
                   "hub id")  # fmt: skip
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
    p.add_argument("--num-frames", type=int, default=None,
                   help="frames per video (default: the training length; longer videos are "
                   "made clip by clip)")  # fmt: skip
    p.add_argument("--overlap", type=int, default=None,
                   help="frames each next clip shares with the one before (default: half a clip)")  # fmt: skip
    p.add_argument("--image", default=None,
                   help="image-to-video: this image is the content frame; only the motion is "
                   "sampled (prompt / class optional)")  # fmt: skip
    p.add_argument("--strength", type=float, default=None,
                   help="with --image: in [0, 1], let the content model first re-denoise the "
                   "image from this noise level under the prompt (default 0: keep it)")  # fmt: skip
    add_sampling_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/samples", help="output folder")
    p.add_argument("--upscale", type=int, default=4, help="pixel upscale of the written files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_compute_args(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "demo",
        help="generate a gallery with the bundled moving-shapes pipeline (offline, ~30 s on CPU)",
        description="Load the pipeline bundled with the package (moving-shapes-tiny), generate "
        "one video per prompt of a fixed list covering every motion class (plus any --prompt), "
        "and write video-NNN.mp4 / .gif and index.html (prompt, seed, time per video).",
    )
    p.add_argument("--model", default="moving-shapes-tiny", help="pipeline folder or bundled name")
    p.add_argument("--prompt", action="append", default=[], help="an extra prompt (repeatable)")
    p.add_argument("--out", default="outputs/demo", help="output folder (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first video (then +1 each)")
    add_sampling_args(p)
    add_compute_args(p)
    p.set_defaults(func=cmd_demo)

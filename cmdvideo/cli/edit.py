"""``cmdvideo transfer`` and ``cmdvideo edit``: what the content / motion split gives existing
videos (``sample --image`` is image-to-video, in generate.py)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import (
    add_compute_args,
    add_sampling_args,
    check_before_loading,
    check_output_folder,
    load_pipeline,
)


def _write(out_dir: Path, frames, names: list[str], upscale: int, what: str, seconds: float):
    from ..pipelines.sample_folder import write_sample_folder

    paths = write_sample_folder(out_dir, frames, names, upscale=upscale)  # each file in one step
    print("\n".join(str(p) for p in paths))
    n, t, h, w, _ = frames.shape
    print(f"{what}: {n} video{'s' if n != 1 else ''} ({t} frames, {h}x{w}) in {seconds:.1f} s")


def check_transfer(args: argparse.Namespace) -> None:
    check_output_folder(args.out)
    check_before_loading(
        args,
        content=args.content,
        motion=args.motion,
        num_frames=args.num_frames,
        upscale=args.upscale,
    )


def cmd_transfer(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    pipe, _ = load_pipeline(args, progress=False)
    start = time.perf_counter()
    out = pipe.transfer_motion(args.content, args.motion, num_frames=args.num_frames)
    name = f"content of {args.content}, motion of {args.motion}"
    _write(
        out_dir, out.frames, [name], args.upscale, "motion transfer", time.perf_counter() - start
    )
    return 0


def _edit_call(args: argparse.Namespace) -> dict:
    labels = None
    if args.class_label is not None:
        labels = int(args.class_label) if args.class_label.isdigit() else args.class_label
    return dict(
        prompt=args.prompt,
        class_labels=labels,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        guidance_rescale=args.guidance_rescale,
    )


def check_edit(args: argparse.Namespace) -> None:
    check_output_folder(args.out)
    check_before_loading(
        args,
        **_edit_call(args),
        video=args.video,
        strength=args.strength,
        edit=args.edit,
        seed=args.seed,
        upscale=args.upscale,
        sampler=args.sampler,
    )
    if not args.prompt and args.class_label is None and args.edit != "motion":
        raise ValueError("give --prompt TEXT and/or --class N|NAME: what the video becomes")


def cmd_edit(args: argparse.Namespace) -> int:
    import torch

    out_dir = Path(args.out)
    call = _edit_call(args)
    pipe, _ = load_pipeline(args, progress=not args.quiet)
    start = time.perf_counter()
    out = pipe.edit_video(
        args.video,
        **call,
        strength=args.strength,
        edit=args.edit,
        generator=torch.Generator().manual_seed(args.seed),
    )
    name = f"{args.video} edited ({args.edit}, strength {args.strength}): {args.prompt or ''}"
    _write(out_dir, out.frames, [name.strip()], args.upscale, "edit", time.perf_counter() - start)
    return 0


def register(sub) -> None:
    _register_transfer(sub)
    _register_edit(sub)


def _register_transfer(sub) -> None:
    p = sub.add_parser(
        "transfer",
        help="motion transfer: the content of one video (or an image) with the motion of another",
        description="Decode the content frame of --content (a video, or an image used as the "
        "content frame) with the motion latent of --motion. Writes video-000.mp4/.gif, grid.png "
        "and prompts.txt.",
    )
    p.add_argument(
        "--model",
        default="moving-shapes-tiny",
        help="pipeline folder or bundled name (default %(default)s)",
    )
    p.add_argument("--content", required=True, help="video or image whose content is kept")
    p.add_argument("--motion", required=True, help="video whose motion is used")
    p.add_argument(
        "--num-frames",
        type=int,
        default=None,
        help="frames read from the start of each video (default: the training length)",
    )
    p.add_argument("--out", default="outputs/transfer", help="output folder (default %(default)s)")
    p.add_argument("--upscale", type=int, default=4, help="pixel upscale of the written files")
    add_compute_args(p)
    # transfer runs no diffusion: the sampling options load_pipeline reads keep their defaults
    p.set_defaults(
        func=cmd_transfer,
        check=check_transfer,
        steps=None,
        guidance=None,
        guidance_rescale=None,
        sampler=None,
    )


def _register_edit(sub) -> None:
    p = sub.add_parser(
        "edit",
        help="edit a video through its decomposition: new content under a prompt, same motion "
        "(or the reverse)",
        description="Encode --video into content frame and motion latent; --edit content "
        "re-denoises the content frame from noise level --strength under the prompt and keeps "
        "the motion, --edit motion keeps the content and resamples the motion, --edit both.",
    )
    p.add_argument(
        "--model",
        default="moving-shapes-tiny",
        help="pipeline folder or bundled name (default %(default)s)",
    )
    p.add_argument("--video", required=True, help="the video to edit (its first frames are used)")
    p.add_argument("--prompt", default=None, help="what the video should become")
    p.add_argument("--class", dest="class_label", default=None, help="class label or name")
    p.add_argument(
        "--edit",
        default="content",
        choices=["content", "motion", "both"],
        help="what is re-generated (default %(default)s)",
    )
    p.add_argument(
        "--strength",
        type=float,
        default=0.6,
        help="noise level in [0, 1] the edited part restarts from (default %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/edit", help="output folder (default %(default)s)")
    p.add_argument("--upscale", type=int, default=4, help="pixel upscale of the written files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_sampling_args(p)
    add_compute_args(p)
    p.set_defaults(func=cmd_edit, check=check_edit)

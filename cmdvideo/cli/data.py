"""``cmdvideo cache`` and ``cmdvideo data preview``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import add_compute_args, add_config_args, add_data_arg, device_of


def _cache_codec(args: argparse.Namespace, config):
    """What `cache` encodes with: the frame VAE (--frames: its latents, for training the
    autoencoder in latent mode) or the trained autoencoder of --autoencoder."""
    from ..models.codec import FrameVAE, VideoCodec

    if args.frames:
        if not config.autoencoder.vae:
            raise ValueError(
                "--frames caches a frame VAE's latents: set autoencoder.vae (latent mode)"
            )
        return FrameVAE.from_pretrained(config.autoencoder.vae, config.autoencoder.vae_subfolder)
    if args.autoencoder is None:
        raise ValueError("give --autoencoder DIR (or --frames for the frame VAE's latents)")
    return VideoCodec.from_pretrained(args.autoencoder)


def cmd_cache(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..data import cache_order
    from ..data.latent_cache import write_latent_cache
    from ..training.follow import explicit_settings, follow_autoencoder

    if args.num_videos is not None and args.num_videos < 1:
        raise ValueError(f"--num-videos must be >= 1, got {args.num_videos}")
    config = load_config(
        args.config, args.overrides, {"data": {"source": str(args.data)}} if args.data else None
    )
    if args.autoencoder is not None and not args.frames:  # its frame size, frames, split
        follow_autoencoder(config, args.autoencoder, explicit_settings(args.overrides))
    # folders: training files, then held-out ones, center-cropped
    dataset, heldout = cache_order(config.data)
    if args.num_videos is None and len(dataset) > 1_000_000:
        raise ValueError("the dataset is unbounded (moving-shapes): give --num-videos")
    codec = _cache_codec(args, config)
    # Under torchrun / accelerate launch every process encodes its own part.
    from accelerate import PartialState

    state = PartialState(cpu=device_of(args) == "cpu")
    device = str(state.device) if state.num_processes > 1 else device_of(args)
    start = time.perf_counter()
    count = min(args.num_videos or len(dataset), len(dataset))
    heldout = max(0, count - (len(dataset) - heldout))  # of the first `count` items
    out = write_latent_cache(
        codec,
        dataset,
        args.out,
        args.num_videos,
        args.batch_size,
        device=device,
        autoencoder=args.autoencoder or config.autoencoder.vae,
        progress=state.is_main_process,
        rank=state.process_index,
        world_size=state.num_processes,
        barrier=state.wait_for_everyone,
        frames=args.frames,
        heldout=heldout,
    )
    if state.is_main_process:
        print(
            f"cached {count} videos in {time.perf_counter() - start:.1f} s "
            f"({state.num_processes} process{'es' if state.num_processes > 1 else ''}): {out}"
        )
        if heldout:
            print(
                f"  of which {heldout} from held-out files (data.heldout_files), "
                "kept out of training as the autoencoder's run kept them"
            )
        print(f"train from it with: --data {out}")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from ..data.video_folder import write_index

    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    start = time.perf_counter()
    result = write_index(args.data, args.out, args.workers)
    print(
        f"indexed {result['videos']} videos in {time.perf_counter() - start:.1f} s: "
        f"{result['readable']} readable"
        + (f", skipped by reason: {result['errors']}" if result["errors"] else "")
    )
    print(f"train from it with: --data {result['index']}")
    return 0


def cmd_data_preview(args: argparse.Namespace) -> int:
    import torch

    from ..config import load_config
    from ..data import build_dataset, take_batch
    from ..data.video_io import write_frame_grid, write_video

    if args.num_videos < 1:
        raise ValueError(f"--num-videos must be >= 1, got {args.num_videos}")
    config = load_config(args.config, args.overrides)
    batch = take_batch(build_dataset(config.data, train=False, source=args.data), args.num_videos)
    out = Path(args.out)
    grid = torch.cat(list(batch["video"]), dim=-1)  # videos side by side: (3, T, H, n*W)
    path = write_video(out.with_suffix(".gif"), grid, upscale=args.upscale)
    png = write_frame_grid(out.with_suffix(".png"), list(batch["video"]), upscale=args.upscale)
    captions = batch.get("caption", [""] * len(batch["video"]))
    for i, (label, caption) in enumerate(zip(batch["label"].tolist(), captions)):
        print(f"{i}: label={label} caption={caption!r}")
    print(f"wrote {path} and {png}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "cache",
        help="encode a dataset once into a latent cache to train the diffusion stages from",
        description="Encode videos with a frozen autoencoder into (content frame, motion latent, "
        "label, caption) shards (safetensors); `train content|motion --data CACHE` reads them "
        "and skips the autoencoder at every step.",
    )
    p.add_argument("--autoencoder", default=None, help="folder from `cmdvideo train autoencoder`")
    p.add_argument(
        "--frames",
        action="store_true",
        help="cache the frame VAE's latents of every frame instead (autoencoder.vae): "
        "what `train autoencoder --data CACHE` trains on in latent mode",
    )
    add_config_args(p)
    add_data_arg(p)
    p.add_argument("--out", required=True, help="cache folder to write")
    p.add_argument("--num-videos", type=int, default=None, help="videos to encode (default: all)")
    p.add_argument("--batch-size", type=int, default=16)
    add_compute_args(p)
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser(
        "index",
        help="probe a large video set once (frames, fps, size, readability) into an index",
        description="Write a JSONL index of a video folder or CSV/JSONL list: every file's "
        "frame count, fps, size and readability, probed in parallel once. `--data INDEX.jsonl` "
        "then starts training without opening every file on every process.",
    )
    p.add_argument("data", help="a folder of videos (flat or UCF-101 layout) or a CSV/JSONL list")
    p.add_argument("--out", required=True, help="the index to write (.jsonl)")
    p.add_argument(
        "--workers", type=int, default=None, help="probing processes (default: cores, max 16)"
    )
    p.set_defaults(func=cmd_index)

    data = sub.add_parser("data", help="look at a dataset").add_subparsers(
        dest="action", required=True
    )
    p = data.add_parser(
        "preview", help="write a GIF and a PNG grid of the first videos of a dataset"
    )
    add_config_args(p)
    add_data_arg(p)
    p.add_argument(
        "--out", default="data_preview", help="output path stem (.gif and .png are written)"
    )
    p.add_argument("--num-videos", type=int, default=8)
    p.add_argument("--upscale", type=int, default=4)
    add_compute_args(p)
    p.set_defaults(func=cmd_data_preview)

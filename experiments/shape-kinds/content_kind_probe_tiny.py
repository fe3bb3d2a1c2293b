"""Can the tiny content UNet learn shape kinds at all? A probe with the kind as the only
condition: a fresh UNet (the `tiny` preset, or `--overrides`) trained on the one-shape content
frames of a latent cache with class label = shape kind (3 classes, 10 % null class for CFG),
then sampled per kind (EMA weights: diffusers' EMAModel, decay 0.999 with its power warm-up) and
scored with the hand-written shape check.

python experiments/shape-kinds/content_kind_probe_tiny.py CACHE AUTOENCODER [--steps 900] [--batch-size 32]
    [--eval-every 300] [--overrides '{"layers_per_block": 2}'] [--out results/...json]
    [--figure PNG] [--binarize] [--prediction-type epsilon|v_prediction]
    [--beta-schedule squaredcos_cap_v2 --no-clip]   (latent caches: configs/tiny-latent.yaml)

Separates "the UNet cannot draw the kind in this many steps" from "the prompt's kind word does
not reach it" (the text-conditioned stage, content_shape_tiny.py).
"""

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel

from cmdvideo.data.latent_cache import LatentCache
from cmdvideo.data.video_io import write_frame_grid
from cmdvideo.evaluation.generation import one_shape_scores
from cmdvideo.models.codec import VideoCodec
from cmdvideo.models.content import build_content_dit, build_content_unet, content_prediction
from cmdvideo.pipelines.denoise import sample_content
from cmdvideo.training.losses import diffusion_loss

KINDS = ("circle", "square", "triangle")


def one_shape_frames(cache_dir: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Content frames of the cache's one-shape videos and their kinds (0 circle, 1 square, 2
    triangle), read from the captions."""
    cache = LatentCache(cache_dir)
    captions = cache.captions()
    keep = [i for i, c in enumerate(captions) if " and " not in c]
    kinds = [KINDS.index(re.search("|".join(KINDS), captions[i])[0]) for i in keep]
    from safetensors import safe_open

    content = []
    for path in cache.files:  # the whole content column, shard by shard
        with safe_open(path, framework="pt") as f:
            content.append(f.get_tensor("content"))
    return torch.cat(content)[keep], torch.tensor(kinds)


def binarize(frames: torch.Tensor) -> torch.Tensor:
    """The same geometry without colour: white where the shape check sees foreground (farther
    than its threshold from the border's median colour), black elsewhere. (N, 3, H, W)."""
    from cmdvideo.evaluation.motion_check import _foreground, _to_unit

    masks = [_foreground(_to_unit(f[:, None]), 0.25)[1][0] for f in frames]
    return (torch.from_numpy(np.stack(masks)).float() * 2 - 1)[:, None].repeat(1, 3, 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cache", help="a latent cache folder (cmdvideo cache)")
    parser.add_argument("autoencoder", help="the autoencoder the cache was made with")
    parser.add_argument("--steps", type=int, default=900)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=7e-4)
    parser.add_argument("--eval-every", type=int, default=300)
    parser.add_argument("--samples-per-kind", type=int, default=40)
    parser.add_argument("--overrides", default="{}", help="JSON: UNet2DConditionModel kwargs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--prediction-type", default="v_prediction", choices=["epsilon", "v_prediction"]
    )
    parser.add_argument(
        "--beta-schedule",
        default="linear",
        help="diffusers beta_schedule (the latent default: squaredcos_cap_v2)",
    )
    parser.add_argument(
        "--no-clip",
        action="store_true",
        help="no clipping of the x0 estimate to [-1, 1] (latents: unit std)",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--backbone",
        default="unet",
        choices=["unet", "dit"],
        help="dit: cmdvideo's ContentDiT (`tiny` preset + --overrides, e.g. "
        "'{\"patch_size\": 1}' for one token per latent pixel)",
    )
    parser.add_argument(
        "--binarize",
        action="store_true",
        help="train on the frames' shape masks (white on black): geometry only",
    )
    parser.add_argument("--out", default=None, help="JSON of the scores at each evaluation")
    parser.add_argument("--figure", default=None, help="PNG: 12 samples per kind, last eval")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    frames, kinds = one_shape_frames(args.cache)
    if args.binarize:
        frames = binarize(frames)
    codec = VideoCodec.from_pretrained(args.autoencoder)
    build = build_content_dit if args.backbone == "dit" else build_content_unet
    unet = build(
        "tiny",
        frames.shape[1],
        tuple(frames.shape[2:]),
        num_classes=3,
        overrides=json.loads(args.overrides),
    )
    params = sum(p.numel() for p in unet.parameters())
    print(f"{len(frames)} one-shape content frames; UNet {params / 1e6:.2f} M parameters")
    if args.threads:
        torch.set_num_threads(args.threads)
    scheduler = DDPMScheduler(
        prediction_type=args.prediction_type,
        clip_sample=not args.no_clip,
        beta_schedule=args.beta_schedule,
    )
    optimizer = torch.optim.AdamW(unet.parameters(), lr=args.lr)
    lr_schedule = get_cosine_schedule_with_warmup(optimizer, 100, args.steps)
    ema = EMAModel(unet.parameters(), decay=0.999, use_ema_warmup=True)
    labels = torch.arange(3).repeat_interleave(args.samples_per_kind)
    history, start, losses = [], time.perf_counter(), []
    for step in range(1, args.steps + 1):
        pick = torch.randint(0, len(frames), (args.batch_size,))
        drop = torch.rand(args.batch_size) < 0.1

        def denoiser(noisy, t, pick=pick, drop=drop):
            return content_prediction(unet, noisy, t, kinds[pick], drop_class=drop)

        loss = diffusion_loss(denoiser, frames[pick], scheduler, args.prediction_type)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        lr_schedule.step()
        ema.step(unet.parameters())
        losses.append(loss.item())
        if step % args.eval_every == 0 or step == args.steps:
            unet.eval()
            ema.store(unet.parameters())
            ema.copy_to(unet.parameters())
            with torch.no_grad():
                content = sample_content(
                    unet,
                    DDIMScheduler.from_config(scheduler.config),
                    len(labels),
                    labels,
                    num_inference_steps=25,
                    generator=torch.Generator().manual_seed(1),
                    progress=False,
                )
                stills = codec.content_to_pixels(content).clamp(-1, 1)
            ema.restore(unet.parameters())
            unet.train()
            per_kind = {
                k: one_shape_scores(stills[labels == i], [k] * args.samples_per_kind)[
                    "shape_kind_accuracy"
                ]
                for i, k in enumerate(KINDS)
            }
            accuracy = sum(per_kind.values()) / len(KINDS)  # the same number of samples per kind
            row = dict(
                step=step,
                loss=sum(losses[-100:]) / len(losses[-100:]),
                shape_kind_accuracy=accuracy,
                per_kind=per_kind,
                seconds=round(time.perf_counter() - start),
            )
            history.append(row)
            if args.figure:
                rows = [stills[labels == i][:12].permute(1, 0, 2, 3) for i in range(3)]
                write_frame_grid(args.figure, rows, labels=list(KINDS), upscale=4)
            print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(dict(vars(args), history=history), indent=1))


if __name__ == "__main__":
    main()

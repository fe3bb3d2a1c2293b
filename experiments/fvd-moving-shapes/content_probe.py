"""Where the content stage's share of the FVD gap goes: FVD (real I3D) of `gen-content` videos —
real videos with their content frame sampled anew under their captions, their own motion kept —
for several content models and content sampling settings, against the same real set.

python experiments/fvd-moving-shapes/content_probe.py --variants 20k:runs/bundle3/content/content:25 \
    10k:runs/bundle3/content/snapshots/step-010000/content:25 [--num-videos 128] \
    [--out results/fvd-moving-shapes/content-probe.json]

A variant is NAME:CONTENT_MODEL_DIR:STEPS[:GUIDANCE[:RESCALE[:SAMPLER]]] (the directory of a
diffusers UNet2DConditionModel; "shipped" for the pipeline's own; GUIDANCE default the
pipeline's content guidance, RESCALE its rescale, "-" keeps either; SAMPLER one of cmdvideo's
named samplers, default the pipeline's own).
"""

import argparse
import json
import time
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from fvd_sets import edited

from cmdvideo.evaluation.frechet import frechet_distance_from_stats
from cmdvideo.evaluation.fvd import FVDProtocol, i3d_stats
from cmdvideo.evaluation.generation import held_out_videos, pipeline_world
from cmdvideo.evaluation.i3d import load_i3d, weights_of
from cmdvideo.pipelines.cmd import CMDPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="moving-shapes-tiny")
    parser.add_argument("--variants", nargs="+", required=True)
    parser.add_argument("--num-videos", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default="results/fvd-moving-shapes/content-probe.json")
    args = parser.parse_args()

    pipe = CMDPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    shipped, schedulers = pipe.content_model, (pipe.content_scheduler, pipe.motion_scheduler)
    defaults = {k: pipe.config[k] for k in ("content_guidance_scale", "guidance_rescale")}
    n, frames = args.num_videos, pipe.config.num_frames
    items = held_out_videos(n, frames, *pipe.video_size(), world=pipeline_world(pipe))
    real = torch.stack([it["video"] for it in items])
    captions = [it["caption"] for it in items]
    i3d = load_i3d().eval()
    protocol = FVDProtocol(num_real=n, num_generated=n).for_weights(weights_of(i3d))
    real_stats = i3d_stats(i3d, real.split(args.batch_size), protocol, n)
    out = Path(args.out)
    table = json.loads(out.read_text()) if out.exists() else {}
    for variant in args.variants:
        name, folder, steps, *rest = variant.split(":")
        start = time.perf_counter()
        pipe.content_model = (
            shipped if folder == "shipped" else UNet2DConditionModel.from_pretrained(folder)
        )
        pipe.register_to_config(num_inference_steps=int(steps), **defaults)
        pipe.content_scheduler, pipe.motion_scheduler = schedulers
        for key, value in zip(("content_guidance_scale", "guidance_rescale"), rest[:2]):
            if value != "-":
                pipe.register_to_config(**{key: float(value)})
        if len(rest) > 2:
            pipe.set_sampler(rest[2])
        with torch.no_grad():
            videos = edited(pipe, real, captions, "content", 64)
        stats = i3d_stats(i3d, videos.split(args.batch_size), protocol, n)
        fvd = frechet_distance_from_stats(
            real_stats, stats, unbiased=protocol.covariance == "unbiased", sqrt=protocol.sqrt
        )
        table[name] = {
            "content_model": folder,
            "steps": int(steps),
            "settings": rest,
            "fvd_gen_content": fvd,
            "num_videos": n,
            "seconds": round(time.perf_counter() - start),
        }
        print(name, json.dumps(table[name]), flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()

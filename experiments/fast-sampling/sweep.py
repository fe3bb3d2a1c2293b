"""Fewer sampling steps at equal quality: samplers and step counts on the bundle, scored by the
project's own measures, beside DDIM 25 with other seeds (how far the measures move by chance).

python experiments/fast-sampling/sweep.py [--model moving-shapes-tiny] [--per-class 30]
    [--threads 1] [--runs ddim:25:leading dpm:10:trailing ...] [--seeds 0]
    [--out results/fast-sampling]

A run is SAMPLER:STEPS:SPACING[:CONTENT_GUIDANCE:RESCALE] (SAMPLER one of cmdvideo's samplers;
SPACING the diffusers ``timestep_spacing``: leading (the bundle's), trailing or linspace;
CONTENT_GUIDANCE and RESCALE the content stage's CFG scale and both stages' CFG rescale, default
the pipeline's). Each run writes
RUN-seedS.json (`cmdvideo eval generation`'s result) and the table sweep.json gathers them.
Every run uses the same held-out prompts and, for one seed, the same starting noise.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from cmdvideo.evaluation.generation import evaluate_generation
from cmdvideo.models.classifier import load_classifier
from cmdvideo.pipelines.cmd import CMDPipeline

MEASURES = {
    "motion_class": ("class_conditioned", "motion_accuracy"),
    "motion_prompt": ("prompt_conditioned", "motion_accuracy"),
    "kind": ("prompt_conditioned", "shape_kind_accuracy"),
    "colour": ("prompt_conditioned", "shape_color_accuracy"),
    "two_shape_kind": ("prompt_conditioned", "multi_shape_kind_accuracy"),
}


def time_one_video(pipe, steps: int, repeats: int = 7) -> float:
    """Median seconds for one video at batch 1 (the default prompt), after a warm-up."""
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        pipe(
            prompt="a red square moving left",
            num_inference_steps=steps,
            output_type="pt",
            generator=torch.Generator().manual_seed(i),
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="moving-shapes-tiny")
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", nargs="+", default=["ddim:25:leading", "dpm:10:trailing"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", default="results/fast-sampling")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    classifier = load_classifier()
    table = json.loads((out / "sweep.json").read_text()) if (out / "sweep.json").exists() else {}
    for run in args.runs:
        sampler, steps, spacing, *guidance = run.split(":")
        pipe = CMDPipeline.from_pretrained(args.model)
        if guidance:
            pipe.register_to_config(
                content_guidance_scale=float(guidance[0]), guidance_rescale=float(guidance[1])
            )
        pipe.set_progress_bar_config(disable=True)
        pipe.set_threads(args.threads)
        pipe.set_sampler(sampler, spacing)
        seconds = time_one_video(pipe, int(steps))
        for seed in args.seeds:
            key = "-".join([sampler, steps, spacing, *guidance, f"seed{seed}"])
            result = evaluate_generation(
                pipe, classifier, args.per_class, int(steps), seed=seed, progress=False
            )
            result.pop("videos")
            result.update(sampler=sampler, timestep_spacing=spacing, threads=args.threads)
            (out / f"{key}.json").write_text(json.dumps(result, indent=1))
            row = {m: result[a][b] for m, (a, b) in MEASURES.items()}
            row.update(
                fd=result["fd_moving_shapes"],
                fd_floor=result["fd_moving_shapes_real_vs_real"],
                seconds_per_video_batch1=seconds,
            )
            table[key] = row
            print(key, json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
            (out / "sweep.json").write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()

"""Score a moving-shapes pipeline and draw the README's generation figures.

python experiments/upright-world/evaluate_generation_tiny.py runs/default/pipeline [--per-class 10] [--steps S]

Writes results/generation-tiny/eval.json (what `cmdvideo eval generation` prints, with the
hand-written motion check beside the classifier) and docs/figures/generation_tiny.{png,gif}:
one row per prompt of cmdvideo.data.moving_shapes.DEMO_PROMPTS.
"""

import argparse
import json
import time
from pathlib import Path

import torch

from cmdvideo.data.moving_shapes import DEMO_PROMPTS
from cmdvideo.data.video_io import write_frame_grid, write_video
from cmdvideo.evaluation.generation import evaluate_generation, generate_videos
from cmdvideo.evaluation.motion_check import motion_accuracy
from cmdvideo.models.classifier import load_classifier
from cmdvideo.pipelines.cmd import CMDPipeline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--steps", type=int, default=None, help="default: the pipeline's")
    parser.add_argument("--guidance", type=float, default=None, help="default: the pipeline's")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--out", default="results/generation-tiny")
    parser.add_argument("--figures", default="docs/figures")
    args = parser.parse_args()

    start = time.perf_counter()
    pipe = CMDPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    args.steps = pipe.default_steps(args.steps)
    result = evaluate_generation(
        pipe, load_classifier(), args.per_class, args.steps, args.guidance, args.batch
    )
    videos = result.pop("videos")
    classes = list(pipe.config.class_names)
    asked = [c for c in range(len(classes)) for _ in range(args.per_class)]
    hand = motion_accuracy(videos["class_conditioned"], classes, asked)
    result["hand_written_motion_check_class_conditioned"] = hand["accuracy"]
    result["model"] = args.model

    # figure: one row per demo prompt
    figure, _ = generate_videos(
        pipe,
        2,
        args.batch,
        prompt=list(DEMO_PROMPTS),
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
    )
    figures = Path(args.figures)
    scale = max(1, 64 // figure.shape[-1])  # 32x32 videos drawn at 2x, 64x64 at 1x
    write_frame_grid(figures / "generation_tiny.png", list(figure), labels=None, upscale=scale)
    strip = torch.cat([torch.cat(list(figure[i : i + 5]), dim=-1) for i in (0, 5)], dim=-2)
    write_video(
        figures / "generation_tiny.gif", strip, fps=8, upscale=max(1, 96 // figure.shape[-1])
    )
    (figures / "generation_tiny_prompts.txt").write_text(
        "".join(f"row {i + 1}: {p}\n" for i, p in enumerate(DEMO_PROMPTS))
    )
    result["seconds"] = round(time.perf_counter() - start, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

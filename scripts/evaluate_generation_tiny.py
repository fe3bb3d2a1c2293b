"""Generate with the tiny moving-shapes pipeline and check the motion of what comes out.

python scripts/evaluate_generation_tiny.py runs/pipeline-tiny [--per-class 10] [--steps 50]

Writes results/generation-tiny/eval.json and the figures docs/figures/generation_tiny.{png,gif}
(one row per prompt of FIGURE_PROMPTS). Motion and colours are judged by the hand-written checks
of cmdvideo.evaluation.motion_check (their accuracy on real and on autoencoder-reconstructed
videos is reported beside, as the ceiling they allow).
"""

import argparse
import json
import time
from pathlib import Path

import torch

from cmdvideo.data.moving_shapes import MovingShapes
from cmdvideo.data.video_io import write_frame_grid, write_video
from cmdvideo.evaluation.motion_check import color_accuracy, motion_accuracy
from cmdvideo.pipelines.cmd import CMDPipeline

FIGURE_PROMPTS = [
    "a red circle moving left on a blue background",
    "a green square moving up on a white background",
    "a yellow triangle moving right on a black background",
    "a white circle moving down on a purple background",
    "a blue square moving up and left on a yellow background",
    "an orange triangle moving down and right on a gray background",
    "a cyan circle rotating on a red background",
    "a purple square growing on a green background",
    "a black triangle shrinking on an orange background",
    "a red square bouncing on a cyan background",
]


def generate(pipe, seed, batch, **kwargs):
    """Videos (B, 3, T, H, W) in [-1, 1] and seconds, in batches of ``batch``."""
    prompts, labels = kwargs.pop("prompt", None), kwargs.pop("class_labels", None)
    n = len(prompts or labels)
    out, seconds = [], 0.0
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch):
        sl = slice(start, start + batch)
        t0 = time.perf_counter()
        frames = pipe(
            prompt=None if prompts is None else prompts[sl],
            class_labels=None if labels is None else labels[sl],
            generator=generator,
            output_type="pt",
            **kwargs,
        ).frames
        seconds += time.perf_counter() - t0
        out.append(frames.permute(0, 2, 1, 3, 4) * 2 - 1)
    return torch.cat(out), seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--guidance", type=float, default=4.0)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--out", default="results/generation-tiny")
    parser.add_argument("--figures", default="docs/figures")
    args = parser.parse_args()

    pipe = CMDPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    classes = list(pipe.config.class_names)
    common = dict(num_inference_steps=args.steps, guidance_scale=args.guidance)
    result = {"model": args.model, "steps_per_stage": args.steps, "guidance": args.guidance}

    # ceilings: the check on real held-out videos and on their reconstructions
    size = pipe.content_model.config.sample_size  # pixel mode: the frame size
    h, w = (size, size) if isinstance(size, int) else size
    held_out = MovingShapes(num_videos=10**6, num_frames=pipe.config.num_frames, height=h,
                            width=w, seed=1)  # fmt: skip
    n = args.per_class * len(classes)
    items = [held_out[i] for i in range(n)]
    real = torch.stack([it["video"] for it in items])
    labels = [it["label"] for it in items]
    from cmdvideo.models.codec import VideoCodec

    codec = VideoCodec(pipe.autoencoder)
    with torch.no_grad():
        recon = torch.cat([codec.decode(*codec.encode(real[i : i + 50])) for i in range(0, n, 50)])
    result["check_on_real"] = motion_accuracy(real, classes, labels)["accuracy"]
    result["check_on_reconstructions"] = motion_accuracy(recon, classes, labels)["accuracy"]
    captions = [it["caption"] for it in items]
    result["color_check_on_real"] = color_accuracy(real, captions)
    result["color_check_on_reconstructions"] = color_accuracy(recon, captions)

    # class-conditioned: per_class videos of every class
    asked = [c for c in range(len(classes)) for _ in range(args.per_class)]
    videos, seconds = generate(pipe, 0, args.batch, class_labels=asked, **common)
    acc = motion_accuracy(videos, classes, asked)
    result["class_conditioned"] = {k: acc[k] for k in ("accuracy", "num_videos", "by_class")}
    result["seconds_per_video"] = seconds / len(asked)

    # prompt-conditioned: the captions of held-out videos
    prompts = [it["caption"] for it in items]
    videos, _ = generate(pipe, 1, args.batch, prompt=prompts, **common)
    acc = motion_accuracy(videos, classes, labels)
    result["prompt_conditioned"] = {k: acc[k] for k in ("accuracy", "num_videos", "by_class")}
    result["prompt_conditioned"]["colors"] = color_accuracy(videos, prompts)

    # figure: one row per prompt
    videos, _ = generate(pipe, 2, args.batch, prompt=FIGURE_PROMPTS, **common)
    figures = Path(args.figures)
    write_frame_grid(figures / "generation_tiny.png", list(videos), labels=None, upscale=2)
    strip = torch.cat([torch.cat(list(videos[i : i + 5]), dim=-1) for i in (0, 5)], dim=-2)
    write_video(figures / "generation_tiny.gif", strip, fps=8, upscale=3)
    (figures / "generation_tiny_prompts.txt").write_text(
        "".join(f"row {i + 1}: {p}\n" for i, p in enumerate(FIGURE_PROMPTS))
    )
    result["figure_prompts"] = FIGURE_PROMPTS

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "figure_prompts"}, indent=1))


if __name__ == "__main__":
    main()

"""How well a moving-shapes pipeline's content model denoises real content frames, by noise
level: the shape kind and colours of its one-step clean estimate x0 of held-out content frames
(the autoencoder's) noised to timestep t. Separates "cannot keep a shape it is shown" (low t)
from "does not draw one from noise" (content_shape_tiny.py, next to this file).

python experiments/shape-kinds/content_denoise_tiny.py PIPELINE [--num-videos 200]
    [--timesteps 50,100,200,400,600] [--figure PATH]

Prompted with each video's caption (no class label, no guidance), one noise draw per frame
(seeded). Two more columns say how much the prompt steers the estimate: its mean absolute change
when the shape-kind word of the prompt is swapped (circle -> square -> triangle -> circle) and
when the shape-colour word is (to the next colour), on the same noisy input. The figure: real
content frames, then per timestep the noisy input and the estimate.
"""

import argparse

import torch

from cmdvideo.data.video_io import write_frame_grid
from cmdvideo.evaluation.generation import (
    held_out_one_shape_videos,
    one_shape_scores,
    swapped_prompts,
)
from cmdvideo.models.content import content_prediction
from cmdvideo.pipelines.cmd import CMDPipeline


def clean_estimate(scheduler, noisy, output, t):
    """x0 from the model output (ε or v) at timestep t."""
    a = scheduler.alphas_cumprod[t]
    if scheduler.config.prediction_type == "v_prediction":
        return a.sqrt() * noisy - (1 - a).sqrt() * output
    return (noisy - (1 - a).sqrt() * output) / a.sqrt()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pipeline", help="pipeline folder or moving-shapes-tiny")
    parser.add_argument("--num-videos", type=int, default=200)
    parser.add_argument("--timesteps", default="50,100,200,400,600")
    parser.add_argument("--figure", default=None, help="PNG of the first 8 frames per row")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    items, kinds = held_out_one_shape_videos(args.num_videos, 16, 32, 32)
    prompts = [it["caption"] for it in items]
    pipe = CMDPipeline.from_pretrained(args.pipeline)
    scheduler = pipe.content_scheduler
    generator = torch.Generator().manual_seed(args.seed)
    rows, labels = [], []

    def score(frames):
        scores = one_shape_scores(frames, kinds, prompts)
        return scores["shape_kind_accuracy"], scores["shape_color_accuracy"]

    with torch.no_grad():
        content, _ = pipe.codec.encode(torch.stack([it["video"] for it in items]))
        text = pipe.encode_prompt(prompts, "cpu").content
        null = pipe.encode_prompt(None, "cpu").content_null
        kind_words, colour_words = swapped_prompts(prompts, kinds)
        other_kind = pipe.encode_prompt(kind_words, "cpu").content
        other_colour = pipe.encode_prompt(colour_words, "cpu").content
        shape, colour = score(pipe.codec.content_to_pixels(content))
        print(f"{args.pipeline}: {len(items)} one-shape held-out content frames")
        print(
            "| t | alpha_bar | x0 shape kind | x0 shape colour | x0 MSE | change: kind word | "
            "change: colour word |\n|---|---|---|---|---|---|---|"
        )
        print(f"| real | 1 | {shape:.3f} | {colour:.3f} | 0 | | |")
        rows.append(pipe.codec.content_to_pixels(content[:8]))
        labels.append("real")
        for t in (int(v) for v in args.timesteps.split(",")):
            a = scheduler.alphas_cumprod[t]
            noise = torch.randn(content.shape, generator=generator)
            noisy = a.sqrt() * content + (1 - a).sqrt() * noise
            steps = torch.full((len(content),), t)
            x0, x0_kind, x0_colour = (
                clean_estimate(
                    scheduler,
                    noisy,
                    content_prediction(pipe.content_model, noisy, steps, None, e, null),
                    t,
                )
                for e in (text, other_kind, other_colour)
            )
            kind_change = (x0_kind - x0).abs().mean().item()
            colour_change = (x0_colour - x0).abs().mean().item()
            shape, colour = score(pipe.codec.content_to_pixels(x0))
            mse = (x0 - content).pow(2).mean().item()
            print(
                f"| {t} | {a:.3f} | {shape:.3f} | {colour:.3f} | {mse:.4f} | {kind_change:.4f} | "
                f"{colour_change:.4f} |"
            )
            rows += [
                pipe.codec.content_to_pixels(noisy[:8]).clamp(-1, 1),
                pipe.codec.content_to_pixels(x0[:8]).clamp(-1, 1),
            ]
            labels += [f"t={t}", "x0"]
    if args.figure:
        # write_frame_grid takes videos (3, T, H, W): one row per noise level, frames = videos
        write_frame_grid(
            args.figure, [r.permute(1, 0, 2, 3) for r in rows], labels=labels, upscale=3
        )
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()

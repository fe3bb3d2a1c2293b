"""Shape kind and colours of the content frames a moving-shapes pipeline's content model draws
for held-out one-shape captions: separates the content model from the decoder when the shape
of generated videos is wrong (experiments/autoencoder-tiny/shape_ceiling_tiny.py measures the
autoencoder alone).

python experiments/shape-kinds/content_shape_tiny.py PIPELINE [PIPELINE ...] [--num-videos 200] [--steps S]
    [--guidance G] [--guidance-rescale PHI] [--kind-negative] [--kind-figure PNG]

Captions of the one-shape videos among the first ``--num-videos`` held-out videos (evaluation
seed 1), prompted as in `pipe(prompt=...)` (no class label); content stage only (its DDIM
scheduler, the pipeline's content guidance and steps).

--kind-negative: the "unconditional" side of CFG is the prompt with the next shape kind instead
of the empty prompt (a negative prompt), so guidance pushes along the kind word only.
--kind-figure: the same 12 noise draws for each kind ("a white KIND moving left on a black
background", "a yellow KIND rotating on a blue background"), one row per kind: if the rows are
alike, the kind word does not steer the model (the pipeline's content guidance and steps).
"""

import argparse
import time

import torch

from cmdvideo.data.moving_shapes import SHAPES
from cmdvideo.data.video_io import write_frame_grid
from cmdvideo.evaluation.generation import (
    held_out_one_shape_videos,
    one_shape_scores,
    swapped_prompts,
)
from cmdvideo.pipelines.cmd import CMDPipeline
from cmdvideo.pipelines.denoise import sample_content


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pipelines", nargs="+", help="pipeline folders or moving-shapes-tiny")
    parser.add_argument("--num-videos", type=int, default=200)
    parser.add_argument("--steps", type=int, default=None, help="default: the pipeline's")
    parser.add_argument("--guidance", type=float, default=None, help="default: the pipeline's")
    parser.add_argument(
        "--guidance-rescale",
        type=float,
        default=None,
        help="CFG rescale phi (default: the pipeline's)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--kind-negative",
        action="store_true",
        help="CFG against the prompt with another shape kind",
    )
    parser.add_argument("--kind-figure", default=None, help="PNG: same noise, one row per kind")
    args = parser.parse_args()

    items, kinds = held_out_one_shape_videos(args.num_videos, 16, 32, 32)
    prompts = [it["caption"] for it in items]
    for path in args.pipelines:
        pipe = CMDPipeline.from_pretrained(path)
        unet = pipe.content_model
        steps = pipe.default_steps(args.steps)
        guidance, _ = pipe.guidance_scales(args.guidance)
        rescale = pipe.default_rescale(args.guidance_rescale)
        start = time.perf_counter()
        with torch.no_grad():
            text = pipe.encode_prompt(prompts, "cpu").content
            null = pipe.encode_prompt(None, "cpu").content_null
            if args.kind_negative:
                other_kind, _ = swapped_prompts(prompts, kinds)
                null = pipe.encode_prompt(other_kind, "cpu").content
            content = sample_content(
                unet,
                pipe.content_scheduler,
                len(prompts),
                None,
                text,
                null,
                guidance,
                steps,
                torch.Generator().manual_seed(args.seed),
                "cpu",
                progress=False,
                guidance_rescale=rescale,
            )
            stills = pipe.codec.content_to_pixels(content).clamp(-1, 1)
        scores = one_shape_scores(stills, kinds, prompts)
        negative = ", kind-negative" if args.kind_negative else ""
        print(
            f"{path}: {len(prompts)} content frames, {steps} steps, guidance {guidance} "
            f"(rescale {rescale}{negative}): "
            f"shape kind {scores['shape_kind_accuracy']:.3f}, shape colour "
            f"{scores['shape_color_accuracy']:.3f}, "
            f"background {scores['background_accuracy']:.3f} "
            f"({time.perf_counter() - start:.0f} s)"
        )
        if args.kind_figure:
            default_guidance, _ = pipe.guidance_scales(None)  # plain CFG would oversaturate
            kind_figure(pipe, args.kind_figure, default_guidance, steps, rescale, args.seed)


def kind_figure(pipe, path, guidance, steps, rescale, seed) -> None:
    """One row per shape kind, the same 12 noise draws in every row."""
    rows = []
    with torch.no_grad():
        null = pipe.encode_prompt(None, "cpu").content_null
        for kind in SHAPES:
            prompts = [f"a white {kind} moving left on a black background"] * 6 + [
                f"a yellow {kind} rotating on a blue background"
            ] * 6
            text = pipe.encode_prompt(prompts, "cpu").content
            content = sample_content(
                pipe.content_model,
                pipe.content_scheduler,
                len(prompts),
                None,
                text,
                null,
                guidance,
                steps,
                torch.Generator().manual_seed(seed),
                "cpu",
                progress=False,
                guidance_rescale=rescale,
            )
            rows.append(pipe.codec.content_to_pixels(content).clamp(-1, 1).permute(1, 0, 2, 3))
    write_frame_grid(path, rows, labels=list(SHAPES), upscale=4)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()

"""How well an adapter from `cmdvideo teach` does its concept on held-out prompts (colours and
shapes / motions no teaching clip combines), by the checks of `check.py`.

    python experiments/teach/evaluate.py --adapter runs/teach/bar --concept bar [--videos 60]

Prints (and with --json writes) the concept's accuracy, the asked colours and the asked other
part (the known motion of a taught shape, the known shape of a taught motion).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from check import kind_check, motion_check
from clips import KNOWN_MOTIONS, NEW_SHAPES, held_out_prompts

from cmdvideo import CMDPipeline
from cmdvideo.data.moving_shapes import parse_caption
from cmdvideo.data.video_io import pipeline_frames_to_videos
from cmdvideo.evaluation.motion_check import color_check, prompt_colors


def _asked(prompt: str, concept: str) -> tuple[str, str]:
    """(shape kind, motion name) a held-out prompt asks for."""
    words = prompt.split()
    kind = words[2]
    phrase = prompt.split(f" {kind} ", 1)[1].split(" on ")[0]
    motion = next((m for m, p in KNOWN_MOTIONS.items() if p == phrase), phrase)
    return kind, motion


@torch.no_grad()
def generate(pipe, prompts: list[str], seed: int, batch: int = 20) -> torch.Tensor:
    """(N, 3, T, H, W) in [-1, 1]: one video per prompt, seeds seed, seed + 1, ..."""
    videos = []
    for start in range(0, len(prompts), batch):
        out = pipe(
            prompts[start : start + batch],
            generator=torch.Generator().manual_seed(seed + start),
            output_type="pt",
        )
        videos.append(pipeline_frames_to_videos(out.frames))
    return torch.cat(videos)


def score(videos: torch.Tensor, prompts: list[str], concept: str) -> dict:
    kinds, motions, colors = [], [], []
    for video, prompt in zip(videos, prompts):
        kind, motion = _asked(prompt, concept)
        kinds.append(kind_check(video) == kind)
        motions.append(motion_check(video) == motion)
        asked, seen = prompt_colors(prompt), color_check(video)
        colors.append(
            seen["background"] == asked["background"] and seen["foreground"] == asked["shapes"][0]
        )
    taught = kinds if concept in NEW_SHAPES else motions
    other = motions if concept in NEW_SHAPES else kinds
    return {
        "concept": float(np.mean(taught)),
        "colors": float(np.mean(colors)),
        "other": float(np.mean(other)),
        "videos": len(prompts),
    }


def evaluate_adapter(adapter, concept: str, videos: int, seed: int = 1000, pipe=None) -> dict:
    pipe = pipe or CMDPipeline.from_pretrained("moving-shapes-tiny")
    pipe.set_progress_bar_config(disable=True)
    prompts = held_out_prompts(concept, videos)
    pipe.load_lora_weights(adapter, adapter_name="taught")
    try:
        result = score(generate(pipe, prompts, seed), prompts, concept)
    finally:
        pipe.unload_lora_weights()
    result["parsed_example"] = parse_caption(prompts[0])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", required=True)
    parser.add_argument("--concept", required=True)
    parser.add_argument("--videos", type=int, default=60)
    parser.add_argument("--json", default=None, help="write the result here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    result = evaluate_adapter(args.adapter, args.concept, args.videos)
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

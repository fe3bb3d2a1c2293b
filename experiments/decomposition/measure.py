"""What the content / motion split gives, measured on held-out moving-shapes videos (evaluation
seed 1, one-shape videos) with the hand-written checks (cmdvideo.evaluation.motion_check):

1. image-to-video: a real video's middle frame is the image, a random motion is asked (its
   caption with that motion, and the class); PSNR of the generated middle frame to the image,
   motion accuracy against the asked motion, shape kind and colours kept.
2. motion transfer: pairs (A, B) with different motions; the truth is A's appearance rendered
   with B's motion (the dataset renders any pair); PSNR of transfer(A, B) and of doing nothing
   (decode(A, A)) to it, the motion class of the result against B's, its shape kind against A's.
3. editing: recolour prompts (the caption with the next shape colour), edit="content"; the new
   colour right, the background and the motion class kept.
4. long videos: 64 frames per one-shape caption; motion accuracy per 16-frame window, and the
   seam: mean frame-to-frame difference at clip joins against inside clips.

python experiments/decomposition/measure.py [--model moving-shapes-tiny] [--num-videos 120]
    [--out results/decomposition] [--figures docs/figures]

Writes OUT/decomposition.json and FIGURES/decomposition-{i2v,transfer,edit,long}.gif (input |
output strips).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from cmdvideo.data.moving_shapes import (
    COLORS,
    MOTIONS,
    Motion,
    VideoFactors,
    caption_for,
    render_video,
)
from cmdvideo.data.video_io import write_video
from cmdvideo.evaluation.generation import held_out_one_shape_videos, pipeline_world
from cmdvideo.evaluation.motion_check import classify_motion, color_check, shape_check
from cmdvideo.pipelines.cmd import CMDPipeline


def to_unit(video: torch.Tensor) -> np.ndarray:
    """Dataset layout (3, T, H, W) in [-1, 1] -> (T, H, W, 3) in [0, 1]."""
    return ((video.permute(1, 2, 3, 0).numpy() + 1) / 2).clip(0, 1)


def to_check(frames: np.ndarray) -> np.ndarray:
    """Pipeline layout (T, H, W, 3) in [0, 1] -> the checks' (3, T, H, W) in [-1, 1]."""
    return frames.transpose(3, 0, 1, 2) * 2 - 1


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-10)))


def middle(frames: np.ndarray) -> np.ndarray:
    """The clip's middle (the content anchor's): mean of frames (T-1)//2 and T//2."""
    t = frames.shape[0]
    return frames[(t - 1) // 2 : t // 2 + 1].mean(axis=0)


def strip(*videos: np.ndarray) -> np.ndarray:
    """Videos or images (T, H, W, 3) / (H, W, 3) side by side, white 1-pixel gaps; the
    longest length, the others held on their last frame."""
    t = max(v.shape[0] if v.ndim == 4 else 1 for v in videos)
    cols = []
    for v in videos:
        v = v[None] if v.ndim == 3 else v
        v = np.concatenate([v, np.repeat(v[-1:], t - len(v), axis=0)]) if len(v) < t else v
        cols += [v, np.ones((t, v.shape[1], 1, 3))]
    return np.concatenate(cols[:-1], axis=2)


def image_to_video(pipe, items, rng, args) -> tuple[dict, list]:
    rows, shown = [], []
    for i, item in enumerate(items):
        source = to_unit(item["video"])
        factors = VideoFactors.from_dict(item["factors"])
        asked = MOTIONS[int(rng.integers(len(MOTIONS)))]
        prompt = caption_for(VideoFactors(factors.appearance, Motion(asked, 0.4)))
        out = pipe.image_to_video(
            middle(source),
            prompt=prompt,
            class_labels=asked,
            num_inference_steps=args.steps,
            generator=torch.Generator().manual_seed(i),
        ).frames[0]
        seen, asked_colours = color_check(to_check(out)), color_check(to_check(source))
        rows.append(
            {
                "psnr_middle": psnr(middle(out), middle(source)),
                "motion_right": classify_motion(to_check(out)) == asked,
                "kind_kept": shape_check(to_check(out))
                == item["factors"]["appearance"]["shapes"][0]["kind"],
                "colours_kept": seen == asked_colours,
            }
        )
        if len(shown) < 4:
            shown.append(strip(middle(source), out))
    return summarise(rows), shown


def transfer(pipe, items, args) -> tuple[dict, list]:
    rows, shown = [], []
    for a, b in zip(items[0::2], items[1::2]):
        fa, fb = VideoFactors.from_dict(a["factors"]), VideoFactors.from_dict(b["factors"])
        if fa.motion.name == fb.motion.name:
            continue
        truth = to_unit(render_video(VideoFactors(fa.appearance, fb.motion), *a["video"].shape[1:]))
        va, vb = to_unit(a["video"]), to_unit(b["video"])
        swap = pipe.transfer_motion(va, vb).frames[0]
        same = pipe.transfer_motion(va, va).frames[0]
        rows.append(
            {
                "psnr_swap": psnr(swap, truth),
                "psnr_nothing": psnr(same, truth),
                "psnr_reconstruction": psnr(same, va),
                "motion_is_b": classify_motion(to_check(swap)) == fb.motion.name,
                "truth_motion_is_b": classify_motion(to_check(truth)) == fb.motion.name,
                "kind_is_a": shape_check(to_check(swap)) == fa.appearance.shapes[0].kind,
            }
        )
        if len(shown) < 4:
            shown.append(strip(va, vb, swap, truth))
    return summarise(rows), shown


def edit(pipe, items, args) -> tuple[dict, list]:
    colours, rows, shown = list(COLORS), [], []
    for i, item in enumerate(items):
        factors = VideoFactors.from_dict(item["factors"])
        shape = factors.appearance.shapes[0]
        new = next(
            c
            for k in range(1, len(colours))
            if (c := colours[(colours.index(shape.color) + k) % len(colours)])
            != factors.appearance.background
        )
        prompt = caption_for(factors).replace(f"{shape.color} {shape.kind}", f"{new} {shape.kind}")
        source = to_unit(item["video"])
        out = pipe.edit_video(
            source,
            prompt,
            class_labels=factors.motion.name,
            strength=args.edit_strength,
            edit="content",
            num_inference_steps=args.steps,
            generator=torch.Generator().manual_seed(i),
        ).frames[0]
        seen = color_check(to_check(out))
        rows.append(
            {
                "new_colour_right": seen["foreground"] == new,
                "background_kept": seen["background"] == factors.appearance.background,
                "motion_kept": classify_motion(to_check(out)) == factors.motion.name,
                "source_motion_checked": classify_motion(item["video"]) == factors.motion.name,
            }
        )
        if len(shown) < 4:
            shown.append(strip(source, out))
    return summarise(rows), shown


def long_videos(pipe, items, args) -> tuple[dict, list]:
    rows, shown, window = [], [], int(pipe.config.num_frames)
    overlap = window // 2
    for i, item in enumerate(items[: args.num_long]):
        factors = VideoFactors.from_dict(item["factors"])
        out = pipe(
            caption_for(factors),
            class_labels=factors.motion.name,
            num_frames=args.long_frames,
            num_inference_steps=args.steps,
            generator=torch.Generator().manual_seed(i),
        ).frames[0]
        diffs = np.abs(np.diff(out, axis=0)).mean(axis=(1, 2, 3))  # diffs[k]: frame k -> k+1
        # every `overlap`-th frame a cross-fade starts or a clip's own frames begin
        joins = [k - 1 for k in range(overlap, len(out), window - overlap)]
        inside = [k for k in range(len(diffs)) if k not in joins]
        wins = [
            classify_motion(to_check(out[s : s + window])) == factors.motion.name
            for s in range(0, len(out) - window + 1, window)
        ]
        rows.append(
            {
                "seam_ratio": float(diffs[joins].mean() / max(diffs[inside].mean(), 1e-8)),
                **{f"window_{k}_motion_right": w for k, w in enumerate(wins)},
            }
        )
        if len(shown) < 3:
            shown.append(out)
    return summarise(rows), shown


def summarise(rows: list[dict]) -> dict:
    out = {"num": len(rows)}
    for key in rows[0]:
        values = [float(r[key]) for r in rows]
        out[key] = (
            float(np.median(values)) if key.startswith(("psnr", "seam")) else float(np.mean(values))
        )
    if "seam_ratio" in out:
        out["seam_ratio_mean"] = float(np.mean([r["seam_ratio"] for r in rows]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="moving-shapes-tiny")
    parser.add_argument("--num-videos", type=int, default=120, help="held-out videos read")
    parser.add_argument("--num-long", type=int, default=20)
    parser.add_argument("--long-frames", type=int, default=64)
    parser.add_argument("--steps", type=int, default=None, help="default: the pipeline's")
    parser.add_argument("--edit-strength", type=float, default=0.7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="results/decomposition")
    parser.add_argument("--figures", default="docs/figures")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe = CMDPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    h, w = pipe.video_size()
    items, _ = held_out_one_shape_videos(
        args.num_videos, int(pipe.config.num_frames), h, w, world=pipeline_world(pipe)
    )
    result = {
        "model": args.model,
        "held_out_one_shape_videos": len(items),
        "steps": pipe.default_steps(args.steps),
        "edit_strength": args.edit_strength,
    }
    figures = Path(args.figures)
    for name, run in (
        ("i2v", lambda: image_to_video(pipe, items, np.random.default_rng(0), args)),
        ("transfer", lambda: transfer(pipe, items, args)),
        ("edit", lambda: edit(pipe, items, args)),
        ("long", lambda: long_videos(pipe, items, args)),
    ):
        start = time.perf_counter()
        summary, shown = run()
        summary["seconds"] = round(time.perf_counter() - start, 1)
        result[name] = summary
        print(name, json.dumps(summary))
        grid = np.concatenate(
            [
                s
                for pair in zip(
                    shown, [np.ones((*shown[0].shape[:1], 1, shown[0].shape[2], 3))] * len(shown)
                )
                for s in pair
            ][:-1],
            axis=1,
        )
        write_video(figures / f"decomposition-{name}.gif", grid, fps=8, upscale=4)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "decomposition.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'decomposition.json'}; figures in {figures}")


if __name__ == "__main__":
    main()

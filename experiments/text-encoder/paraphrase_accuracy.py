"""Does a moving-shapes pipeline draw what a paraphrased prompt asks for?

python experiments/text-encoder/paraphrase_accuracy.py PIPELINE [--per-prompt 4] [--out JSON]

Reads experiments/text-encoder/paraphrases.tsv (a prompt in words the training captions never
use, and the background colour, shape colour, shape kind and motion class it asks for) and
generates ``--per-prompt`` videos for each paraphrase and, with the same seeds, for the
canonical training-style caption of the same attributes ("a red circle moving left on a blue
background": the upper reference). Both sets are scored against the asked attributes as
`cmdvideo eval generation` scores prompts: the motion class by the shipped classifier, the
colours and the shape kind by the hand-written checks (`domain_accuracy`). With a built-in
word encoder, also counts the paraphrase words it does not know (read as its unknown token).
"""

import argparse
import csv
import json
import time
from pathlib import Path

import torch

from cmdvideo.data.moving_shapes import COLORS, MOTIONS, SHAPES, parse_caption
from cmdvideo.evaluation.domain import (
    appearance_checks,
    at_classifier_size,
    classify,
    domain_accuracy,
)
from cmdvideo.evaluation.generation import generate_videos
from cmdvideo.models.classifier import load_classifier
from cmdvideo.models.text import WordTextEncoder, words
from cmdvideo.pipelines.cmd import CMDPipeline

HERE = Path(__file__).parent
MOTION_PHRASES = {
    "up-left": "moving up and left",
    "down-right": "moving down and right",
    "rotate": "rotating",
    "grow": "growing",
    "shrink": "shrinking",
    "bounce": "bouncing",
}


def article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def canonical(row: dict) -> str:
    """The training-style caption of a row's attributes (as `caption_for` writes it)."""
    motion = MOTION_PHRASES.get(row["motion"], f"moving {row['motion']}")
    return (
        f"{article(row['shape_color'])} {row['shape_kind']} {motion} on "
        f"{article(row['background'])} background"
    )


def read_paraphrases(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for row in rows:
        if (
            row["background"] not in COLORS
            or row["shape_color"] not in COLORS
            or row["shape_kind"] not in SHAPES
            or row["motion"] not in MOTIONS
        ):
            raise ValueError(f"bad attributes in {path}: {row}")
        asked = parse_caption(canonical(row))
        assert asked["motion"] == row["motion"] and asked["background"] == row["background"]
        assert asked["shapes"] == [(row["shape_color"], row["shape_kind"])], asked
    return rows


def scores(classifier, videos, asked: list[str], per_prompt: int) -> dict:
    """`domain_accuracy` against the canonical captions, and each prompt's hit rates."""
    videos = at_classifier_size(videos)
    pred, seen = classify(classifier, videos), appearance_checks(videos)
    total = domain_accuracy(None, videos, prompts=asked, predictions=pred, appearance=seen)
    per_prompt_hits = []
    for start in range(0, len(asked), per_prompt):
        a = parse_caption(asked[start])
        part = range(start, start + per_prompt)
        per_prompt_hits.append(
            {
                "motion": sum(pred["motion"][i] == a["motion"] for i in part) / per_prompt,
                "background": sum(seen[i]["background"] == a["background"] for i in part)
                / per_prompt,
                "shape_color": sum(seen[i]["foreground"] == a["shapes"][0][0] for i in part)
                / per_prompt,
                "shape_kind": sum(seen[i]["kind"] == a["shapes"][0][1] for i in part) / per_prompt,
            }
        )
    return {**total, "per_prompt": per_prompt_hits}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="pipeline folder or bundled name")
    parser.add_argument("--paraphrases", type=Path, default=HERE / "paraphrases.tsv")
    parser.add_argument("--per-prompt", type=int, default=4, help="videos per prompt (seeds)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=51)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the result here (JSON)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = read_paraphrases(args.paraphrases)
    pipe = CMDPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    classifier = load_classifier()
    encoder = pipe.text_encoder
    result = {
        "model": str(args.model),
        "text_encoder": type(encoder).__name__,
        "num_prompts": len(rows),
        "per_prompt": args.per_prompt,
        "seed": args.seed,
        "num_inference_steps": pipe.default_steps(None),
        "guidance_scale": list(pipe.guidance_scales(None)),
    }
    paraphrases = [r["prompt"] for r in rows]
    if isinstance(encoder, WordTextEncoder):
        tokens = [w for p in paraphrases for w in words(p)]
        unknown = set(encoder.unknown_words(paraphrases))
        result["unknown_words"] = {
            "distinct": len(unknown),
            "distinct_of": len(set(tokens)),
            "tokens": sum(w in unknown for w in tokens),
            "tokens_of": len(tokens),
            "words": sorted(unknown),
            "known": sorted(set(tokens) - unknown),
        }
        for e in (encoder, getattr(pipe, "motion_text_encoder", None)):  # counted here:
            if isinstance(e, WordTextEncoder):  # no warning from the pipeline
                e.report_unknown_words(paraphrases)
    asked = [canonical(r) for r in rows for _ in range(args.per_prompt)]
    start = time.perf_counter()
    for name, prompts in (("paraphrase", paraphrases), ("canonical", [canonical(r) for r in rows])):
        prompts = [p for p in prompts for _ in range(args.per_prompt)]
        # the same seed and batches for both sets: video i starts from the same noise in each
        videos, _ = generate_videos(pipe, args.seed, args.batch_size, prompt=prompts)
        result[name] = scores(classifier, videos, asked, args.per_prompt)
        for row, hits in zip(rows, result[name]["per_prompt"], strict=True):
            hits["prompt"] = row["prompt"] if name == "paraphrase" else canonical(row)
        r = result[name]
        print(
            f"{name:>10}: background {r['background_accuracy']:.3f}  shape colour "
            f"{r['shape_color_accuracy']:.3f}  motion {r['motion_accuracy']:.3f}  shape kind "
            f"{r['shape_kind_accuracy']:.3f}  all {r['all_accuracy']:.3f}  "
            f"({r['num_videos']} videos)"
        )
    result["seconds"] = round(time.perf_counter() - start, 1)
    if "unknown_words" in result:
        u = result["unknown_words"]
        print(
            f"unknown to the word encoder: {u['distinct']} of {u['distinct_of']} distinct "
            f"paraphrase words, {u['tokens']} of {u['tokens_of']} word tokens"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

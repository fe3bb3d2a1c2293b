"""The teach table: for each new concept and number of clips, `cmdvideo teach` with its
defaults (wall time on this machine), the concept on held-out prompts (`evaluate.py`), and the
bundle's own `eval generation` with the adapter loaded beside the base's.

    python experiments/teach/run.py                       # every concept at 4, 8, 16 clips
    python experiments/teach/run.py --concepts bar --clips 16 --eval-per-class 10

Writes runs/teach/<concept>-<clips>/ (the adapters) and results/teach/teach.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from clips import write_clips
from evaluate import evaluate_adapter

from cmdvideo import CMDPipeline
from cmdvideo.evaluation.generation import evaluate_generation
from cmdvideo.models.classifier import load_classifier

CONCEPTS = ("bar", "semicircle", "zigzagging", "shaking")
OUT = Path("results/teach")


def teach_once(concept: str, clips: int, threads: int, extra: list[str], same_start=False) -> dict:
    name = f"{concept}{'-same-start' if same_start else ''}-{clips}"
    data = write_clips(concept, clips, Path(f"runs/teach/data/{name}"), same_start=same_start)
    out = Path(f"runs/teach/{name}")
    subprocess.run(["rm", "-rf", str(out)], check=True)
    argv = [
        sys.executable,
        "-m",
        "cmdvideo.cli",
        "teach",
        "--data",
        str(data),
        "--out",
        str(out),
        "--threads",
        str(threads),
        "--json",
        *extra,
    ]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"teach failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {"adapter": str(out), "wall_s": round(wall, 1), **report}


def generation_scores(pipe, classifier, per_class: int) -> dict:
    result = evaluate_generation(pipe, classifier, per_class=per_class, progress=False)
    cls, txt = result["class_conditioned"], result["prompt_conditioned"]
    return {
        "motion_class": cls["motion_accuracy"],
        "motion_prompt": txt["motion_accuracy"],
        "kind": txt["shape_kind_accuracy"],
        "colors": (txt["background_accuracy"] + txt["shape_color_accuracy"]) / 2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concepts", nargs="+", default=list(CONCEPTS))
    parser.add_argument("--clips", nargs="+", type=int, default=[4, 8, 16])
    parser.add_argument("--videos", type=int, default=60, help="held-out prompts per adapter")
    parser.add_argument("--eval-per-class", type=int, default=10, help="0: skip eval generation")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", dest="extra", action="append", default=[])
    parser.add_argument("--same-start", action="store_true", help="shakes start in step")
    args = parser.parse_args()
    extra = [x for item in args.extra for x in ("--set", item)]
    torch.set_num_threads(args.threads)
    pipe = CMDPipeline.from_pretrained("moving-shapes-tiny")
    pipe.set_progress_bar_config(disable=True)
    classifier = load_classifier(None) if args.eval_per_class else None
    OUT.mkdir(parents=True, exist_ok=True)
    saved = OUT / "teach.json"
    rows = json.loads(saved.read_text()) if saved.is_file() else {}
    if args.eval_per_class and "base" not in rows:
        rows["base"] = generation_scores(pipe, classifier, args.eval_per_class)
    for concept in args.concepts:
        for clips in args.clips:
            row = teach_once(concept, clips, args.threads, extra, args.same_start)
            row["held_out"] = evaluate_adapter(row["adapter"], concept, args.videos, pipe=pipe)
            if args.eval_per_class:
                pipe.load_lora_weights(row["adapter"])
                row["eval_generation"] = generation_scores(pipe, classifier, args.eval_per_class)
                pipe.unload_lora_weights()
            key = f"{concept}{' (same start)' if args.same_start else ''}-{clips}"
            rows[key] = row
            print(json.dumps({key: row}), flush=True)
            saved.write_text(json.dumps(rows, indent=2) + "\n")
    (OUT / "teach.md").write_text(markdown(rows))
    print((OUT / "teach.md").read_text())


def markdown(rows: dict) -> str:
    base = rows.get("base")
    lines = [
        "| concept | clips | stage | steps | wall | concept right | colours | other part |"
        " eval generation: motion (class / prompt), kind, colours |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    if base:
        lines.append(
            f"| (base) | | | | | | | | {base['motion_class']:.0%} / {base['motion_prompt']:.0%},"
            f" {base['kind']:.0%}, {base['colors']:.0%} |"
        )
    for key, row in rows.items():
        if key == "base":
            continue
        concept, clips = key.rsplit("-", 1)
        held, gen = row["held_out"], row.get("eval_generation")
        scores = (
            f"{gen['motion_class']:.0%} / {gen['motion_prompt']:.0%}, {gen['kind']:.0%}, "
            f"{gen['colors']:.0%}"
            if gen
            else "-"
        )
        lines.append(
            f"| {concept} | {clips} | {'+'.join(row['lora'])} | {row['steps']} | "
            f"{row['wall_s']:.0f} s | {held['concept']:.0%} | {held['colors']:.0%} | "
            f"{held['other']:.0%} | {scores} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

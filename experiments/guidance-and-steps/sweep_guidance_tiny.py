"""Score a moving-shapes pipeline at several (content, motion) guidance pairs.

python experiments/guidance-and-steps/sweep_guidance_tiny.py PIPE --per-class 4 --steps 25 \
    1.5,3 1.0,3 3,3 1.5,5

One line per pair: motion accuracy (class- and prompt-conditioned, shipped classifier),
background / shape colour / shape kind (hand-written checks) and fd_moving_shapes beside
real-vs-real, from `cmdvideo.evaluation.generation.evaluate_generation` with the pair written
into the pipeline's config (what `cmdvideo pipeline assemble --content-guidance/--motion-guidance`
stores).
"""

import argparse
import time

from cmdvideo.evaluation.generation import evaluate_generation
from cmdvideo.models.classifier import load_classifier
from cmdvideo.pipelines.cmd import CMDPipeline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("pairs", nargs="+", help="CONTENT,MOTION guidance pairs, e.g. 1.5,3")
    parser.add_argument("--per-class", type=int, default=4)
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args()

    pipe = CMDPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    classifier = load_classifier()
    for pair in args.pairs:
        content, motion = (float(v) for v in pair.split(","))
        pipe.register_to_config(content_guidance_scale=content, motion_guidance_scale=motion)
        start = time.perf_counter()
        r = evaluate_generation(pipe, classifier, args.per_class, args.steps, progress=False)
        p = r["prompt_conditioned"]
        print(
            f"content {content} motion {motion}: motion class "
            f"{r['class_conditioned']['motion_accuracy']:.2f} prompt {p['motion_accuracy']:.2f} "
            f"background {p['background_accuracy']:.2f} shape colour "
            f"{p['shape_color_accuracy']:.2f} kind {p['shape_kind_accuracy']:.2f} fd "
            f"{r['fd_moving_shapes']:.1f} (real vs real {r['fd_moving_shapes_real_vs_real']:.1f}) "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()

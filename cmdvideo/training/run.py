"""A training run from a config: data, stage, trainer, and what follows training (the motion
scale of a new autoencoder). What ``cmdvideo train STAGE`` does, callable from Python."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config, load_config
from ..data import build_train_and_eval, dataset_captions, split_of, take_batch
from ..models.codec import VideoCodec
from .diffusion import ContentStage, MotionStage
from .follow import follow_autoencoder, follow_data
from .stages import AutoencoderStage, ClassifierStage
from .trainer import Trainer
from .vae import FrameVAEStage

STAGES = ("vae", "autoencoder", "content", "motion", "classifier")
PREVIEW_VIDEOS = 4


@dataclass
class TrainResult:
    """What a finished run wrote and measured."""

    out: Path
    stage: str
    steps: int
    seconds: float
    calibration: dict | None = None  # autoencoder: {"factor", "num_videos"}
    notes: list[str] = field(default_factory=list)
    is_main: bool = True  # the main process of a multi-process run (the one that reports)


def run_config(
    config: str | Path, overrides: list[str], out: str | Path, resume: bool, fields=None
) -> Config:
    """The config of a run: on ``resume`` the run's own saved config (plus explicit
    overrides and ``fields``), else ``config`` (a preset name or YAML path) with them."""
    saved = Path(out) / "config.yaml"
    if resume and saved.is_file():
        return load_config(saved, overrides, fields)
    return load_config(config, overrides, fields)


def build_stage(
    name: str,
    config: Config,
    train_set,
    autoencoder: str | Path | None = None,
    explicit: set[str] | frozenset = frozenset(),
):
    """The stage ``name`` (one of :data:`STAGES`) for this config and training data; a
    diffusion stage conditions on what the data has unless ``explicit`` holds its
    ``<stage>.condition`` (see :func:`cmdvideo.training.follow.follow_data`)."""

    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    if name == "autoencoder":
        return AutoencoderStage(config)
    if name == "classifier":
        return ClassifierStage(config)
    if name == "vae":
        return FrameVAEStage(config)
    if autoencoder is None:
        raise ValueError(f"the {name} stage needs a trained autoencoder (--autoencoder DIR)")

    codec = VideoCodec.from_pretrained(autoencoder)
    _check_cache_shapes(train_set, codec, config.data, autoencoder)
    cached = train_set.motion_scaling_factor
    if cached is not None and cached != codec.motion_scale:
        raise ValueError(
            f"the latent cache was made with motion_scaling_factor {cached}, the autoencoder "
            f"has {codec.motion_scale}: re-run `cmdvideo cache` with this autoencoder"
        )
    stage_cls = ContentStage if name == "content" else MotionStage
    follow_data(config, stage_cls.section, train_set, explicit)
    section = getattr(config, stage_cls.section)
    captions = dataset_captions(train_set) if section.uses_text else None
    classes = list(train_set.classes)
    return stage_cls(
        config, codec, num_classes=len(classes), captions=captions, class_names=classes
    )


def train(
    name: str,
    config: Config,
    out: str | Path,
    resume: bool = False,
    autoencoder: str | Path | None = None,
    explicit: set[str] | frozenset = frozenset(),
) -> TrainResult:
    """Train stage ``name`` into ``out`` (see :class:`cmdvideo.training.trainer.Trainer` for the
    folder layout); a new autoencoder's motion scale is then measured and stored.

    The diffusion stages take the data settings of ``autoencoder`` (frame size, frames, the
    held-out split) and condition on what the data has, except for the dotted keys in
    ``explicit`` (what the user set: ``--set`` on the command line), which must agree with
    them (:mod:`cmdvideo.training.follow`).

    Raises:
        TrainingDivergedError: the loss became NaN/inf (earlier checkpoints are kept).
        ValueError: an explicit setting contradicts the autoencoder or the data.
    """
    out = Path(out)
    if name in ("content", "motion") and autoencoder is not None:
        follow_autoencoder(config, autoencoder, explicit)
    train_set, eval_set = build_train_and_eval(config.data)
    # Every saved model records the moving-shapes world it learned (a latent cache knows the
    # one it was encoded from), and None for other data.
    config.data.world = train_set.world
    preview = take_batch(eval_set, PREVIEW_VIDEOS)
    stage = build_stage(name, config, train_set, autoencoder, explicit)
    trainer = Trainer(
        stage, train_set, config, out, preview_batch=preview, preview_split=split_of(eval_set)
    )
    start = time.perf_counter()
    trainer.train(resume=resume)
    result = TrainResult(
        out,
        stage.name,
        config.train.max_steps,
        time.perf_counter() - start,
        is_main=trainer.accelerator.is_main_process,
    )
    after = trainer.after_training_result or {}
    if "motion_scaling_factor" in after:
        result.calibration = {
            "factor": after["motion_scaling_factor"],
            "num_videos": after["calibration_videos"],
        }
    elif stage.name == "autoencoder" and config.autoencoder.freeze_encoder:
        result.notes.append("encoder frozen: motion_scaling_factor kept from autoencoder.init")
    return result


def _check_cache_shapes(train_set, codec, data, autoencoder) -> None:
    """A latent cache must hold this autoencoder's content frames and motion latents at the
    data's size (a cache made at another size trains models the pipeline cannot use)."""
    index = getattr(train_set, "index", None)
    if not isinstance(index, dict) or "content_shape" not in index:
        return
    ae = codec.autoencoder
    f = codec.frame_vae.downsample if codec.latent_mode else 1
    expected = {
        "content_shape": [ae.config.in_channels, data.height // f, data.width // f],
        "motion_shape": list(
            ae.motion_latent_shape(data.num_frames, data.height // f, data.width // f)
        ),
    }
    for key, shape in expected.items():
        if list(index[key]) != shape:
            raise ValueError(
                f"the latent cache holds {key.split('_')[0]} latents of shape {index[key]}, but "
                f"the autoencoder {autoencoder} at {data.num_frames} frames of "
                f"{data.height}x{data.width} makes {shape}: re-run `cmdvideo cache` with "
                "this autoencoder"
            )

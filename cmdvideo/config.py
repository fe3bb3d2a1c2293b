"""Typed configuration: one dataclass per component, YAML presets, ``--set key=value`` overrides.

A run's resolved config is saved next to its checkpoints, so every result can be traced back
to the exact settings that made it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class DataConfig:
    """Where videos come from and how they are cut.

    ``source`` is "moving-shapes" (the embedded dataset) or a path: a folder of videos (flat or
    UCF-101 layout) or a CSV/JSONL index with captions. height/width are pixels.
    """

    CHOICES: ClassVar[dict] = {
        "world": ("upright", "random", None),  # None: not moving shapes
        "worker_start_method": ("fork", "forkserver", "spawn"),
    }

    source: str = "moving-shapes"
    num_frames: int = 16
    height: int = 32
    width: int = 32
    frame_stride: int = 1
    # moving-shapes only
    num_videos: int = 1_000_000
    max_shapes: int = 2
    textured: bool = False
    # "upright" (shapes upright, large, inside the frame) or "random" (the world before it:
    # random angles, smaller, may leave the frame); see cmdvideo/data/moving_shapes.py
    world: str = "upright"
    # the fraction of videos whose one shape follows a free path (cmdvideo/data/paths.py)
    # instead of one of the motion classes; 0: the ten classes only
    paths: float = 0.0
    # the training split uses `seed`; evaluation and previews use held-out `eval_seed`
    seed: int = 0
    eval_seed: int = 1
    # loader worker processes (0: load in the training process); they live for the whole run
    num_workers: int = 0
    # how the workers start: "fork" (a copy of the training process, in milliseconds: every
    # dataset here is safe in it), "forkserver" or "spawn" (a fresh interpreter each, seconds;
    # for datasets of your own that keep threads) -- docs/training.md#data-loader-workers
    worker_start_method: str = "fork"
    # seconds to wait for a batch from the workers before stopping with the files of that batch
    # named (a file that hangs its decoder, a stuck worker); 0 waits forever
    loader_timeout: float = 300.0
    decode_threads: int = 1  # FFmpeg threads per decoded video (times workers times processes)
    # video folders: clips per file and epoch in training (random), and evenly spaced ones per
    # file in the held-out view (evaluation, previews)
    clips_per_video: int = 1
    eval_clips_per_video: int = 1
    # video folders and indexes: this fraction of the files (at least one of two or more) is
    # never trained on; previews, the validation loss and `eval autoencoder` read those. 0:
    # train on every file (evaluation then runs on training files, and says so). The later
    # stages take the autoencoder run's value (and seed), so every stage keeps the same files out.
    heldout_files: float = 0.1


@dataclass
class AutoencoderConfig:
    """The CMD autoencoder: an architecture preset, optional overrides, optional frame VAE."""

    preset: str = "tiny"
    overrides: dict = field(default_factory=dict)
    # Latent mode: a diffusers AutoencoderKL (local directory or hub id) encoding every frame.
    vae: str | None = None
    vae_subfolder: str | None = None
    loss: str = "l2"  # "l1", "l2" or "l1+l2"
    # Weight of an extra MSE between the content frame and the clip's middle frame (the mean
    # of the two middle frames for an even T); 0 = the paper's objective. With large motion
    # (moving-shapes) the plain objective hides the trajectory in dithered per-pixel weights,
    # a content frame no image model can draw; the anchor keeps it a natural frame and moves
    # the motion into the motion latent.
    content_anchor: float = 0.0
    # Start from a trained autoencoder (a `cmdvideo train autoencoder` folder) instead of
    # random weights, e.g. to fine-tune with another objective. Its architecture is kept
    # (`preset` is ignored); `overrides` may only add modules to it (refine_channels), whose
    # new weights start as initialised.
    init: str | None = None
    # Train the decoder only: the encoder's weights, hence the content frames and motion
    # latents (and the motion scaling factor), stay those of `init`, so a latent cache and the
    # diffusion models trained on it remain valid for the fine-tuned decoder.
    freeze_encoder: bool = False
    # Weight of the swap-pair loss (0 = off): each video's content frame decoded with the motion
    # latent of the next video in the batch must give the first video's appearance moving as
    # the second one does (rendered from the factors: moving-shapes only). It teaches the
    # decoder motion relative to the content frame, which motion transfer needs.
    swap_weight: float = 0.0


@dataclass
class DiffusionConfig:
    """A diffusion stage (content frame or motion latent): architecture preset, noise
    schedule, conditioning and the sampling used for previews."""

    CHOICES: ClassVar[dict] = {
        "backbone": ("unet", "dit"),
        "condition": ("class", "text", "class+text", "none"),
        "prediction_type": (None, "epsilon", "v_prediction"),
        "timestep_spacing": (None, "leading", "trailing", "linspace"),
        "target": ("content_frame", "frames"),
    }
    CONTENT_ONLY: ClassVar[tuple] = ("backbone", "target")

    preset: str = "tiny"
    overrides: dict = field(default_factory=dict)
    # content stage only: "unet" (diffusers UNet2DConditionModel, e.g. Stable Diffusion's) or
    # "dit" (cmdvideo's class-conditional ContentDiT, pixel mode)
    backbone: str = "unet"
    # "class" (labels from the data), "text" (captions), "class+text" or "none"
    condition: str = "class"
    # Text encoder: "builtin" (content stage: a word encoder learned with the model), or a
    # frozen one: a CLIP text model / SD repo (local directory or hub id) or a content run
    # folder holding the built-in encoder it learned (what the motion stage reads).
    text_encoder: str | None = None
    # Arguments of a fresh built-in word encoder, e.g. {"embed_init_std": 1.0} (see
    # WordTextEncoder); ignored for frozen encoders and when continuing from `init`.
    text_encoder_overrides: dict = field(default_factory=dict)
    condition_dropout: float = 0.1  # probability of the null condition, for CFG
    # The noise schedule (training and sampling). Each unset (null) value comes from the
    # scheduler/ of content.init when there is one (Stable Diffusion: scaled_linear
    # 0.00085-0.012, steps_offset 1, ...), else from DDPM's defaults (linear 0.0001-0.02,
    # epsilon); see cmdvideo/training/schedule.py.
    prediction_type: str | None = None  # "epsilon" or "v_prediction"
    num_train_timesteps: int | None = None
    beta_schedule: str | None = None  # any diffusers beta_schedule
    beta_start: float | None = None
    beta_end: float | None = None
    timestep_spacing: str | None = None  # sampler: "leading", "trailing", "linspace"
    steps_offset: int | None = None
    set_alpha_to_one: bool | None = None
    # [lo, hi): train on timesteps lo <= t < hi only (e.g. fine-tune the noise levels where
    # shapes are decided); None = all. The validation loss always uses every timestep.
    timestep_range: list[int] | None = None
    preview_steps: int = 25  # DDIM steps for training previews
    preview_guidance: float = 2.0
    # content stage only: start from a pretrained image UNet (local directory or hub id) ...
    init: str | None = None
    init_subfolder: str | None = None
    # ... and learn "content_frame"s, or single "frames" of the videos (image pretraining).
    target: str = "content_frame"

    @property
    def uses_class(self) -> bool:
        return self.condition in ("class", "class+text")

    @property
    def uses_text(self) -> bool:
        return self.condition in ("text", "class+text")


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping shared by every training stage."""

    CHOICES: ClassVar[dict] = {"mixed_precision": ("no", "fp16", "bf16")}

    batch_size: int = 16
    learning_rate: float = 3e-4
    weight_decay: float = 0.0
    adam_betas: tuple = (0.9, 0.99)
    lr_scheduler: str = "cosine"  # any diffusers.optimization scheduler name
    warmup_steps: int = 100
    max_steps: int = 2000
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"  # "no", "fp16", "bf16": autocast over every model call
    # Recompute the activations of each transformer block / UNet block in the backward pass
    # instead of keeping them: much less memory for about a third more compute.
    gradient_checkpointing: bool = False
    allow_tf32: bool = True  # CUDA: TF32 matrix products (Ampere and newer)
    ema_decay: float = 0.999
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    # Save the model (EMA weights) every N steps as OUT/snapshots/step-NNNNNN, a run folder of
    # its own (for learning curves of what only a sampled model shows); 0 = never.
    snapshot_every: int = 0
    preview_every: int = 500
    log_every: int = 10
    seed: int = 0


@dataclass
class VAEConfig:
    """A frame VAE trained by ``cmdvideo train vae`` (a diffusers AutoencoderKL), for latent
    mode where no pretrained one fits the data (the embedded moving-shapes)."""

    CHOICES: ClassVar[dict] = {"loss": ("l1", "l2", "l1+l2")}

    preset: str = "moving-shapes-64"
    overrides: dict = field(default_factory=dict)
    loss: str = "l1"  # reconstruction: "l1", "l2" or "l1+l2"
    kl_weight: float = 1e-6  # small: a near-deterministic code, as Stable Diffusion's VAE
    # weight of an L1 loss between the image gradients (finite differences) of the
    # reconstruction and of the frame: sharp edges, which tell a square from a circle
    edge_weight: float = 0.0
    frames_per_video: int = 4  # frames drawn from each video of a batch
    init: str | None = None  # continue from a trained VAE (a `train vae` folder or its vae/)


@dataclass
class ClassifierConfig:
    """The moving-shapes video classifier behind the offline metrics (evaluation/domain.py)."""

    CHOICES: ClassVar[dict] = {"pooling": ("mean", "mean+max")}

    widths: tuple = (16, 32, 64, 128)
    feature_dim: int = 128
    stem_stride: int = 2  # spatial stride of the first stage (1: full resolution)
    pooling: str = "mean"  # or "mean+max"
    # Gaussian pixel noise with a std drawn from [0, noise_augment] per video, so that the
    # classifier judges imperfect (generated, reconstructed) videos by their content.
    noise_augment: float = 0.1


@dataclass
class TeachConfig:
    """``cmdvideo teach``: new words and LoRA adapters on a frozen pipeline, learned from a few
    captioned clips (docs/teach.md). The optimisation is ``train``'s (configs/teach.yaml)."""

    CHOICES: ClassVar[dict] = {"stage": ("auto", "content", "motion", "both")}

    # Which denoisers get LoRA layers: "auto" decides from the data (a stage whose loss on the
    # clips is over `stage_threshold` times its loss on the base's own world, and not far below
    # the most surprised stage's), or say it. The
    # new words are learned in both stages' word encoders either way.
    stage: str = "auto"
    stage_threshold: float = 1.4
    rank: int = 8  # LoRA rank (alpha = rank)
    # LoRA target modules (peft names): the content UNet's attention and its resnets' convolutions
    # (outlines live there: attention alone drew a new shape in 22-55 %, with the convolutions
    # 50-90 %), the motion DiT's attention, MLP and adaLN modulation (where the prompt enters)
    content_targets: tuple = ("to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2")
    motion_targets: tuple = ("qkv", "proj", "fc1", "fc2", "modulation.1")
    clips_per_video: int = 8  # random clips (start, crop) of each file, encoded once
    # When only the motion model is taught: each clip's motion also on this many other content
    # frames (the base world's one-shape videos, else the other clips), for the motion model
    # only, so a motion taught on a few shapes moves any shape (decode, then encode again)
    transfers_per_clip: int = 2
    # The clips' own rows are also taught without their prompt this often (as the base learned
    # every video, for classifier-free guidance)
    clip_dropout: float = 0.0
    min_clips: int = 4  # fewer readable clips than this: refuse
    # Prior preservation (DreamBooth): this fraction of every batch is the base's own world
    # (moving shapes, encoded by the base), so prompts without the new words stay as they were
    prior_fraction: float = 0.5
    prior_videos: int = 512


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    content: DiffusionConfig = field(default_factory=DiffusionConfig)
    motion: DiffusionConfig = field(default_factory=DiffusionConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    teach: TeachConfig = field(default_factory=TeachConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def available_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def _build(cls, values: dict, where: str):
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(names)
    if unknown:
        raise ValueError(
            f"unknown key(s) {sorted(unknown)} in {where}; valid keys: {sorted(names)}"
        )
    kwargs = {}
    for key, value in values.items():
        default = getattr(cls(), key) if key in names else None
        if dataclasses.is_dataclass(default):
            kwargs[key] = _build(type(default), value or {}, f"{where}.{key}")
        elif isinstance(default, tuple) and isinstance(value, list):
            kwargs[key] = tuple(value)
        elif isinstance(default, str) and isinstance(value, bool):
            # YAML 1.1 reads an unquoted no/off as False (e.g. `mixed_precision: no`).
            if value:
                raise ValueError(f'{where}.{key}: quote the value, e.g. {key}: "yes"')
            kwargs[key] = "no"
        elif (
            isinstance(default, (int, float))
            and not isinstance(default, bool)
            and value is not None
        ):
            # YAML 1.1 reads "1e-4" as a string; coerce to the field's type, or explain.
            try:
                kwargs[key] = type(default)(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{where}.{key} must be of type {type(default).__name__}, got {value!r}"
                ) from None
        else:
            kwargs[key] = value
    built = cls(**kwargs)
    for key, allowed in getattr(cls, "CHOICES", {}).items():
        if getattr(built, key) not in allowed:
            shown = ", ".join("null" if a is None else repr(a) for a in allowed)
            name = f"{where}.{key}".removeprefix("config.")
            raise ValueError(f"{name} must be one of {shown}; got {getattr(built, key)!r}")
    if where == "config.motion":  # one DiffusionConfig type, two stages: content's keys
        for key in DiffusionConfig.CONTENT_ONLY:
            if key in values and getattr(built, key) != getattr(DiffusionConfig(), key):
                raise ValueError(f"motion.{key} is a content-stage setting; set content.{key}")
    return built


def parse_overrides(pairs: list[str]) -> dict:
    """Turn ``["train.batch_size=8", "autoencoder.overrides.hidden_size=64"]`` into nested dicts.

    Values are parsed as YAML scalars, so ``8`` is an int, ``1e-4`` a float, ``null`` None.
    """
    nested: dict = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value (e.g. train.batch_size=8), got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            raise ValueError(
                f"--set {pair}: the value is not valid YAML; quote it, e.g. --set '{key}=\"{raw}\"'"
            ) from None
        if isinstance(value, str):
            try:  # YAML 1.1 leaves "1e-4" a string
                value = float(value)
            except ValueError:
                pass
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict:
    """A YAML config file's mapping; a file that is not one is one line naming the file, the
    place and the problem (not the parser's traceback)."""
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(
            f"config {path}: not valid YAML{where}: {problem}; fix the file or "
            "start from a preset (cmdvideo/configs/)"
        ) from None
    except UnicodeDecodeError:
        raise ValueError(f"config {path}: not a text file; give a YAML config") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(
            f"config {path}: expected a mapping of sections (data:, train:, ...) at "
            f"the top, got {type(values).__name__}"
        )
    return values


def load_config(
    name_or_path: str | Path | None = None,
    overrides: list[str] | None = None,
    fields: dict | None = None,
) -> Config:
    """Load a YAML config by preset name (``tiny``) or path, then apply ``--set`` overrides
    (``key=value`` strings, values read as YAML), then ``fields`` (nested dicts of values as
    they are: what command-line flags set, so ``--data 2024`` stays the folder "2024").
    A config may start from another with ``base: NAME_OR_PATH`` and change only some keys.

    Raises:
        FileNotFoundError: neither a file nor a known preset name.
        ValueError: a file that is not YAML, unknown keys (the message lists the valid ones).
    """
    values = _read_config(name_or_path) if name_or_path is not None else {}
    values = _merge(values, parse_overrides(overrides or []))
    return _build(Config, _merge(values, fields or {}), "config")


def _read_config(name_or_path: str | Path, seen: tuple[Path, ...] = ()) -> dict:
    """The values of a YAML config (a path or a preset name), on top of those of the config
    its ``base:`` names (a preset name, or a path relative to the file), recursively."""
    path = Path(name_or_path)
    if not path.is_file():
        preset = CONFIG_DIR / f"{name_or_path}.yaml"
        if not preset.is_file():
            raise FileNotFoundError(
                f"config {str(name_or_path)!r} is neither a file nor a preset; "
                f"presets: {available_configs()}"
            )
        path = preset
    path = path.resolve()
    if path in seen:
        raise ValueError(f"config {path} names itself as a base (through {seen[-1]})")
    values = _read_yaml(path)
    base = values.pop("base", None)
    if base is None:
        return values
    relative = path.parent / str(base)
    return _merge(_read_config(relative if relative.is_file() else base, (*seen, path)), values)


def config_from_dict(values: dict[str, Any]) -> Config:
    return _build(Config, values, "config")

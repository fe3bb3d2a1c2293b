"""One :class:`CMDPipeline` folder from the output folders of the three training stages."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

from diffusers import DDIMScheduler

from ..config import load_config
from ..data import build_dataset
from ..models.codec import VideoCodec
from ..models.content import load_content_model
from ..models.motion_dit import MotionDiT
from ..models.text import WordTextEncoder, load_text_encoder
from .arguments import PipelineSpec, check_arguments
from .cmd import CMDPipeline


def _classes_of(run: Path) -> list[str] | None:
    """Class names a training run saved (``classes.json``); for class-conditioned runs of
    moving shapes without one (older runs), the names of the dataset its config builds."""
    path = run / "classes.json"
    if path.is_file():
        return json.loads(path.read_text())

    config = load_config(run / "config.yaml")
    conditions = config.content.condition + config.motion.condition
    if config.data.source == "moving-shapes" and "class" in conditions:
        return list(build_dataset(config.data).classes)
    return None


def assemble_pipeline(
    autoencoder: str | Path, content: str | Path, motion: str | Path, defaults: dict | None = None
) -> CMDPipeline:
    """One :class:`CMDPipeline` from the three training output folders (``cmdvideo train
    autoencoder|content|motion --out``); training schedulers become DDIM samplers.
    ``defaults``: the sampling defaults to store (:func:`sampling_defaults`)."""

    content, motion = Path(content), Path(motion)
    for run, name in ((content, "content"), (motion, "motion")):
        if not (run / name / "config.json").is_file():
            raise FileNotFoundError(
                f"{run}/{name}/config.json not found: give the --out folder of `cmdvideo train {name}`"
            )
    codec = VideoCodec.from_pretrained(autoencoder)
    if codec.autoencoder.config.motion_scaling_factor is None:
        raise ValueError("the autoencoder is not calibrated: run `cmdvideo calibrate` first")
    text_encoder = tokenizer = motion_text_encoder = None
    if (content / "text_encoder").is_dir():
        text_encoder, tokenizer = load_text_encoder(content)
    if (motion / "text_encoder").is_dir():
        encoder, motion_tokenizer = load_text_encoder(motion)
        if isinstance(encoder, WordTextEncoder):
            motion_text_encoder = encoder  # learned with the motion model: its own
        elif text_encoder is None:
            text_encoder, tokenizer = encoder, motion_tokenizer
    classes = [c for c in (_classes_of(content), _classes_of(motion)) if c]
    if len(classes) == 2 and classes[0] != classes[1]:
        raise ValueError("the content and motion runs were trained on different classes")

    num_frames = load_config(motion / "config.yaml").data.num_frames
    data = load_config(content / "config.yaml").data  # content frames: the data's size
    world = data.world  # the moving-shapes world the models learned (None: other data)
    training_data = {"source": "moving-shapes", "world": world} if world else None
    f = codec.frame_vae.downsample if codec.latent_mode else 1
    content_size = [data.height // f, data.width // f]
    DDIM_KEYS = set(inspect.signature(DDIMScheduler.__init__).parameters)  # noqa: N806

    def ddim(run, name, **override):  # the training schedule (saved as DDIM; older: as DDPM)
        config = DDIMScheduler.load_config(run / name)
        config = {k: v for k, v in config.items() if k in DDIM_KEYS}
        return DDIMScheduler.from_config({**config, **override})

    pipe = CMDPipeline(
        autoencoder=codec.autoencoder,
        content_model=load_content_model(content / "content"),
        motion_model=MotionDiT.from_pretrained(motion / "motion"),
        content_scheduler=ddim(content, "content_scheduler"),
        # motion runs saved before clipping was turned off (MotionStage.clip_range) clip x0
        motion_scheduler=ddim(motion, "motion_scheduler", clip_sample=False),
        vae=codec.frame_vae.vae if codec.latent_mode else None,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        motion_text_encoder=motion_text_encoder,
        class_names=classes[0] if classes else None,
        num_frames=num_frames,
        content_size=content_size,
        training_data=training_data,
    )
    if defaults:  # the steps' bound is the schedule's length: known now
        check_arguments(PipelineSpec.from_pipeline(pipe), **defaults)
        pipe.register_to_config(**defaults)
    return pipe


def sampling_defaults(
    content_guidance_scale: float,
    motion_guidance_scale: float,
    num_inference_steps: int,
    guidance_rescale: float = 0.0,
) -> dict:
    """The per-stage defaults a pipeline folder stores (model_index.json), checked against the
    bounds every front end shares (:data:`.arguments.ARGUMENTS`).

    Raises:
        InvalidArgument: a value out of its bounds, by name.
    """
    check_arguments(
        content_guidance_scale=content_guidance_scale,
        motion_guidance_scale=motion_guidance_scale,
        num_inference_steps=num_inference_steps,
        guidance_rescale=guidance_rescale,
    )
    return dict(
        content_guidance_scale=float(content_guidance_scale),
        motion_guidance_scale=float(motion_guidance_scale),
        num_inference_steps=int(num_inference_steps),
        guidance_rescale=float(guidance_rescale),
    )

"""The tiny-scale setting of ``cmdvideo bench``: a config, its data, and CMD's models freshly
initialised the way the training stages build them (the tiny config: 3×16×32×32 pixels)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import Config


@dataclass
class TinySetting:
    """A config, the data the stages need (captions, classes) and one training batch."""

    config: Config
    captions: list[str]
    classes: list[str]
    batch: dict

    @property
    def prompt(self) -> str:
        return self.batch["caption"][0]

    @property
    def label(self) -> int:
        return int(self.batch["label"][0])


def tiny_setting(
    config_name: str = "tiny", overrides: list[str] | tuple = (), batch_size: int | None = None
) -> TinySetting:
    """The config (name or path, ``--set`` overrides), captions and a training batch of
    ``batch_size`` videos (default: the config's ``train.batch_size``)."""
    from ..config import load_config
    from ..data import build_train_and_eval, collate_videos, dataset_captions

    config = load_config(config_name, list(overrides))
    batch_size = batch_size or config.train.batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    data, _ = build_train_and_eval(config.data)
    if len(data) < batch_size:
        raise ValueError(f"the dataset has {len(data)} videos, fewer than batch_size {batch_size}")
    batch = collate_videos([data[i] for i in range(batch_size)])
    if "caption" not in batch:
        raise ValueError("the benchmark conditions every model on a prompt: use data with captions")
    return TinySetting(config, dataset_captions(data), list(data.classes), batch)


def cmd_stages(setting: TinySetting, device: str | None = None):
    """(codec, content stage, motion stage) with freshly initialised models, built by the
    training stages themselves; ``device="meta"`` builds the models without memory."""
    from ..training.diffusion import ContentStage, MotionStage
    from ..training.stages import AutoencoderStage

    with torch.device(device or "cpu"):
        codec = AutoencoderStage(setting.config).codec
    if codec.autoencoder.config.motion_scaling_factor is None:
        # random weights: any factor will do, the motion stage only requires one
        codec.autoencoder.register_to_config(motion_scaling_factor=1.0)
    kwargs = dict(
        num_classes=len(setting.classes), captions=setting.captions, class_names=setting.classes
    )
    content = ContentStage(setting.config, codec, **kwargs)
    motion = MotionStage(setting.config, codec, **kwargs)
    with torch.device(device or "cpu"):
        content.model(), motion.model()
    return codec, content, motion


def cmd_pipeline(setting: TinySetting):
    """A :class:`CMDPipeline` of freshly initialised tiny models (DDIM samplers)."""
    from diffusers import DDIMScheduler

    from ..pipelines.cmd import CMDPipeline

    codec, content_stage, motion_stage = cmd_stages(setting)
    content, motion = content_stage.model(), motion_stage.model()
    pipe = CMDPipeline(
        autoencoder=codec.autoencoder,
        content_model=content.net,
        motion_model=motion.net,
        content_scheduler=DDIMScheduler.from_config(content_stage.scheduler.config),
        motion_scheduler=DDIMScheduler.from_config(motion_stage.scheduler.config),
        vae=codec.frame_vae.vae if codec.latent_mode else None,
        text_encoder=getattr(content, "text_encoder", None) or content_stage.text_encoder,
        tokenizer=content_stage.tokenizer,
        motion_text_encoder=getattr(motion, "text_encoder", None) or None,
        class_names=setting.classes or None,
        num_frames=setting.config.data.num_frames,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe

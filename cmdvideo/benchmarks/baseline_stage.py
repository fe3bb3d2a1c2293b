"""The full-video baseline CMD is set against (paper §4.3, Table 4): a denoiser over the whole
video, trained as a :class:`cmdvideo.training.trainer.Stage` and sampled with DDIM.

``cmdvideo bench`` times its training step and its sampling against CMD's
(:mod:`cmdvideo.benchmarks.efficiency`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import Config
from ..training.losses import PredictionType, diffusion_loss
from ..training.stage import Stage, TrainableModules

BASELINE_KINDS = ("unet3d", "video_dit")


class FullVideoStage(Stage):
    """The baseline's training stage: a denoiser over the whole video, the content stage's noise
    schedule and prediction type, the prompt through its own built-in word encoder learned with
    it (as the tiny content model's).

    Args:
        config: the CMD config (data size, ``content`` noise schedule).
        captions: training captions (the word encoder's vocabulary).
        kind: "unet3d" (the content UNet's widths plus temporal layers) or "video_dit" (the
            tiny Latte preset at the video's size).
        content_unet: the CMD content UNet, or its config / kwargs, whose widths "unet3d"
            takes (see :func:`unet3d_stage`).
    """

    name = "baseline"

    def __init__(
        self, config: Config, captions: list[str], kind: str = "unet3d", content_unet=None
    ):
        from ..training.schedule import build_schedulers, resolve_schedule

        if kind not in BASELINE_KINDS:
            raise ValueError(f"kind must be 'unet3d' or 'video_dit', got {kind!r}")
        if kind == "unet3d" and content_unet is None:
            raise ValueError("the 3-D UNet baseline takes its widths from the content UNet")
        self.config, self.captions, self.kind = config, captions, kind
        self.content_unet = content_unet
        schedule, _ = resolve_schedule(config.content)  # the content model's, for a fair match
        self.prediction_type = PredictionType(schedule["prediction_type"])
        self.scheduler, _ = build_schedulers(schedule)
        self._model = None

    @property
    def video_shape(self) -> tuple[int, int, int, int]:
        """(C, T, H, W) of the videos it denoises (pixels)."""
        data = self.config.data
        return 3, data.num_frames, data.height, data.width

    def model(self) -> TrainableModules:
        """``net`` (the denoiser) and ``text_encoder`` (its word encoder), built once."""
        from ..models.text import WordTextEncoder
        from .baselines import build_video_dit, video_unet_kwargs_from_image_unet

        if self._model is None:
            encoder = WordTextEncoder.from_captions(self.captions)
            c, t, h, w = self.video_shape
            if self.kind == "unet3d":
                from diffusers import UNet3DConditionModel

                image = getattr(self.content_unet, "config", self.content_unet)
                if "block_out_channels" not in image:
                    raise ValueError(
                        "the 3-D UNet baseline takes its widths from a UNet content model; "
                        "content.backbone=dit has none"
                    )
                kwargs = video_unet_kwargs_from_image_unet(image, c, encoder.embed_dim)
                net = UNet3DConditionModel(sample_size=h, **kwargs)
            else:
                net = build_video_dit(
                    "tiny",
                    in_channels=c,
                    out_channels=c,
                    sample_size=h,
                    video_length=t,
                    caption_channels=encoder.embed_dim,
                )
            self._model = TrainableModules(self, net=net, text_encoder=encoder)
        return self._model

    def denoiser(self, model: TrainableModules, text_states: torch.Tensor):
        """``(noisy video, t) -> prediction`` conditioned on text states (B, L, D)."""

        def run(x, t):
            return model.net(x, t, encoder_hidden_states=text_states).sample

        return run

    def objective(self, modules: TrainableModules, batch: dict):
        from ..models.text import encode_prompts

        video = batch["video"]  # (B, 3, T, H, W) in [-1, 1]
        text = encode_prompts(modules.text_encoder, None, batch["caption"], video.device)
        loss = diffusion_loss(
            self.denoiser(modules, text.hidden), video, self.scheduler, self.prediction_type
        )
        return loss, {}

    def save_model(self, model: TrainableModules, out_dir: Path) -> list[Path]:
        """``OUT/baseline`` (the denoiser), ``OUT/baseline_scheduler`` and ``OUT/text_encoder``."""
        out_dir = Path(out_dir)
        paths = [out_dir / self.name, out_dir / f"{self.name}_scheduler", out_dir / "text_encoder"]
        model.net.save_pretrained(paths[0])
        self.scheduler.save_pretrained(paths[1])
        model.text_encoder.save_pretrained(paths[2])
        return paths


def unet3d_stage(config: Config, captions: list[str]) -> FullVideoStage:
    """The 3-D UNet baseline of a config: its content UNet preset's widths (with the config's
    overrides) plus temporal layers, on the whole pixel video."""
    from ..models.content import content_unet_preset

    content = config.content
    if content.backbone != "unet":
        raise ValueError(
            "the tiny 3-D UNet baseline takes its widths from the content UNet; "
            f"content.backbone is {content.backbone!r}"
        )
    unet_config = {**content_unet_preset(content.preset), **(content.overrides or {})}
    return FullVideoStage(config, captions, "unet3d", unet_config)


@torch.no_grad()
def sample_full_video(
    stage: FullVideoStage,
    prompts: list[str],
    num_inference_steps: int,
    generator: torch.Generator | None = None,
    device="cpu",
) -> torch.Tensor:
    """The baseline's sampling: encode the prompts, then DDIM over the whole video (pixels, so
    no decoder).

    Returns:
        (B, 3, T, H, W) pixel videos, B = len(prompts), unclipped (trained on [-1, 1]).
    """
    from diffusers import DDIMScheduler

    from ..models.text import encode_prompts
    from ..pipelines.denoise import denoise

    model = stage.model()
    text = encode_prompts(model.text_encoder, None, prompts, device)
    return denoise(
        stage.denoiser(model, text.hidden),
        (len(prompts), *stage.video_shape),
        DDIMScheduler.from_config(stage.scheduler.config),
        num_inference_steps,
        generator,
        device,
        progress=False,
    )

"""Training stages plugged into :class:`cmdvideo.training.trainer.Trainer`: the autoencoder
(paper §3.1) and the moving-shapes classifier here; the two diffusion stages (§3.2, §3.3) in
:mod:`cmdvideo.training.diffusion`. Each stage's trainable module is an
:class:`~cmdvideo.training.stage.TrainableModules` whose ``forward(batch)`` returns the loss."""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import Config
from ..data import batch_source
from ..data.moving_shapes import render_swapped
from ..evaluation.quality import psnr_per_frame
from ..models.autoencoder import CMDAutoencoder, autoencoder_preset
from ..models.classifier import MovingShapesClassifier, classifier_loss, factor_targets
from ..models.codec import FrameVAE, VideoCodec
from .calibrate import calibrate_folder
from .losses import content_anchor_loss, reconstruction_loss
from .previews import write_preview
from .stage import Stage, TrainableModules


def build_codec(config: Config) -> VideoCodec:
    """A fresh (randomly initialised) autoencoder from the config, with its frame VAE in latent
    mode; the VAE is loaded with ``from_pretrained`` from a local directory or hub id. With
    ``autoencoder.init`` set, the trained autoencoder (and VAE) in that folder instead, with
    the modules ``autoencoder.overrides`` adds (e.g. ``refine_channels``)."""
    ae_cfg = config.autoencoder
    if ae_cfg.init:
        codec = VideoCodec.from_pretrained(ae_cfg.init)
        if ae_cfg.overrides:
            codec = VideoCodec(_extended(codec.autoencoder, ae_cfg.overrides), codec.frame_vae)
        return codec
    if ae_cfg.freeze_encoder:
        raise ValueError("autoencoder.freeze_encoder needs autoencoder.init (a trained encoder)")
    kwargs = autoencoder_preset(ae_cfg.preset)
    kwargs.update(ae_cfg.overrides or {})
    frame_vae = None
    if ae_cfg.vae:
        frame_vae = FrameVAE.from_pretrained(ae_cfg.vae, subfolder=ae_cfg.vae_subfolder)
        kwargs["in_channels"] = frame_vae.latent_channels
        kwargs["output_activation"] = "none"  # latents are unbounded
        f = frame_vae.downsample
        if config.data.height % f or config.data.width % f:
            raise ValueError(
                f"latent mode: data.height/width ({config.data.height}x{config.data.width}) must "
                f"be multiples of the VAE's downsampling factor {f}"
            )
    elif kwargs.get("in_channels", 3) != 3:
        raise ValueError(
            f"autoencoder preset {ae_cfg.preset!r} works on {kwargs['in_channels']}-channel VAE "
            "latents: set autoencoder.vae to an AutoencoderKL directory or hub id"
        )
    return VideoCodec(CMDAutoencoder(**kwargs), frame_vae)


def _extended(trained: CMDAutoencoder, overrides: dict) -> CMDAutoencoder:
    """``trained`` rebuilt with ``overrides`` and its weights; only new modules may appear."""
    kwargs = {k: v for k, v in trained.config.items() if not k.startswith("_")}
    kwargs.update(overrides)
    model = CMDAutoencoder(**kwargs)
    own, weights = model.state_dict(), trained.state_dict()
    changed = [k for k, v in weights.items() if k not in own or own[k].shape != v.shape]
    if changed:
        raise ValueError(
            f"autoencoder.overrides {overrides} change the architecture of autoencoder.init "
            f"(weights {changed[:3]}...); with init they may only add modules (refine_channels)"
        )
    model.load_state_dict(weights, strict=False)
    return model


class AutoencoderStage(Stage):
    """Stage 1 (paper §3.1): reconstruct videos through (content frame, motion latent)."""

    name = "autoencoder"

    def __init__(self, config: Config, codec: VideoCodec | None = None):
        for name in ("content_anchor", "swap_weight"):
            if getattr(config.autoencoder, name) < 0:
                raise ValueError(
                    f"autoencoder.{name} must be >= 0 (0 = off), got "
                    f"{getattr(config.autoencoder, name)}"
                )
        self.config = config
        self._codec = codec

    @property
    def codec(self) -> VideoCodec:
        # Built on first use, i.e. inside Trainer.train after the seed is set, so that the
        # initial weights depend only on train.seed.
        if self._codec is None:
            self._codec = build_codec(self.config)
        return self._codec

    def model(self) -> TrainableModules:
        autoencoder = self.codec.autoencoder
        if self.config.autoencoder.freeze_encoder:
            for module in autoencoder.encoder_modules():
                module.requires_grad_(False)
        if self.config.train.gradient_checkpointing:
            autoencoder.enable_gradient_checkpointing()
        return TrainableModules(self, autoencoder=autoencoder)

    @torch.no_grad()
    def _model_space(self, batch: dict) -> torch.Tensor:
        """What the autoencoder sees: the frames' VAE latents from a frame cache
        (``cmdvideo cache --frames``), else the batch's videos encoded now (latent mode) or as
        they are (pixel mode)."""
        if batch_source(batch) == "frames":
            return batch["frames"]
        video = batch["video"]
        if self.codec.frame_vae is not None:  # frozen: moved here, not by the trainer
            self.codec.frame_vae.to(video.device)
        return self.codec.to_model_space(video)

    def objective(self, modules, batch):
        ae_cfg = self.config.autoencoder
        x = self._model_space(batch)  # (B, C, T, H, W)
        out = modules.autoencoder(x)
        loss = reconstruction_loss(out.reconstruction, x, ae_cfg.loss)
        logs = {}
        if ae_cfg.content_anchor > 0:
            anchor = content_anchor_loss(out.content_frame, x)
            loss = loss + ae_cfg.content_anchor * anchor
            logs["content_anchor"] = anchor.item()
        if ae_cfg.swap_weight > 0:
            swap = self._swap_loss(modules.autoencoder, batch, out, x)
            loss = loss + ae_cfg.swap_weight * swap
            logs["swap"] = swap.item()
        return loss, logs

    def _swap_loss(self, autoencoder, batch, out, x) -> torch.Tensor:
        """decode(content of video i, motion of video i+1) against video i's appearance rendered
        with video i+1's motion (``autoencoder.swap_weight``)."""

        if "factors" not in batch:
            raise ValueError(
                "autoencoder.swap_weight needs videos rendered from their factors (data.source: "
                "moving-shapes, or a frame cache made from it), not a video folder"
            )
        data = self.config.data
        target = render_swapped(
            batch["factors"], x.shape[2], data.height, data.width, data.textured
        )
        with torch.no_grad():
            if self.codec.frame_vae is not None:
                self.codec.frame_vae.to(x.device)
            target = self.codec.to_model_space(target.to(x.device, x.dtype))
        motion = out.motion_latent.roll(-1, dims=0)  # row i: the motion of video i+1
        swapped = autoencoder.decode(out.content_frame, motion)
        return reconstruction_loss(swapped, target, self.config.autoencoder.loss)

    def preview(self, model, batch, out_dir: Path, step: int) -> dict[str, float]:
        x = self._model_space(batch)
        out = model.autoencoder(x)
        if self.codec.frame_vae is not None:
            self.codec.frame_vae.to(x.device)
        video = batch["video"] if "video" in batch else self.codec.to_pixels(x).clamp(-1, 1)
        recon = self.codec.to_pixels(out.reconstruction.float()).clamp(-1, 1)
        content = self.codec.content_to_pixels(out.content_frame.float()).clamp(-1, 1)
        write_preview(Path(out_dir) / f"step-{step:06d}", video, content, recon)
        return {"psnr": psnr_per_frame(recon, video).mean().item()}

    def save_model(self, model, out_dir: Path) -> list[Path]:
        return VideoCodec(model.autoencoder, self.codec.frame_vae).save_pretrained(out_dir)

    def after_training(self, out_dir: Path, dataset, device) -> dict | None:
        """Measure and store the motion scaling factor of the new autoencoder (not when the
        encoder was frozen: the latents, hence the scale, are the init's)."""
        if self.config.autoencoder.freeze_encoder:
            return None

        result = calibrate_folder(out_dir, dataset, device=device)
        return {
            "motion_scaling_factor": result["factor"],
            "calibration_videos": result["num_videos"],
        }


class ClassifierStage(Stage):
    """The moving-shapes classifier of the offline metrics (models/classifier.py): motion class,
    background colour, shape colours and kinds, learned from real videos and their factors."""

    name = "classifier"

    def __init__(self, config: Config):
        self.config = config

    def model(self):
        cfg = self.config.classifier
        classifier = MovingShapesClassifier(
            widths=tuple(cfg.widths),
            feature_dim=cfg.feature_dim,
            stem_stride=cfg.stem_stride,
            pooling=cfg.pooling,
            world=self.config.data.world,
        )
        return TrainableModules(self, classifier=classifier)

    def objective(self, modules, batch):
        if "factors" not in batch:
            raise ValueError("the classifier trains on moving-shapes videos (it needs factors)")
        video = batch["video"]  # (B, 3, T, H, W)
        noise_std = self.config.classifier.noise_augment * torch.rand(
            video.shape[0], 1, 1, 1, 1, device=video.device
        )
        video = video + noise_std * torch.randn_like(video)
        targets = {k: v.to(video.device) for k, v in factor_targets(batch["factors"]).items()}
        return classifier_loss(modules.classifier(video), targets)

    def preview(self, model, batch, out_dir: Path, step: int) -> dict[str, float]:
        predicted = model.classifier(batch["video"])["motion"].argmax(dim=-1)  # (B,)
        return {"motion_accuracy": (predicted == batch["label"]).float().mean().item()}

    def save_model(self, model, out_dir: Path) -> list[Path]:
        path = Path(out_dir) / self.name
        model.classifier.save_pretrained(path)
        return [path]

"""Training stages plugged into :class:`cmdvideo.training.trainer.Trainer`."""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import Config
from ..models.autoencoder import CMDAutoencoder, autoencoder_preset
from ..models.codec import FrameVAE, VideoCodec
from .losses import reconstruction_loss
from .trainer import Stage


def build_codec(config: Config) -> VideoCodec:
    """A fresh (randomly initialised) autoencoder from the config, with its frame VAE in latent
    mode; the VAE is loaded with ``from_pretrained`` from a local directory or hub id."""
    ae_cfg = config.autoencoder
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


class AutoencoderStage(Stage):
    """Stage 1 (paper §3.1): reconstruct videos through (content frame, motion latent)."""

    name = "autoencoder"

    def __init__(self, config: Config, codec: VideoCodec | None = None):
        self.config = config
        self._codec = codec

    @property
    def codec(self) -> VideoCodec:
        # Built on first use, i.e. inside Trainer.train after the seed is set, so that the
        # initial weights depend only on train.seed.
        if self._codec is None:
            self._codec = build_codec(self.config)
        return self._codec

    def model(self) -> CMDAutoencoder:
        return self.codec.autoencoder

    def _model_space(self, video: torch.Tensor) -> torch.Tensor:
        if self.codec.frame_vae is not None:
            self.codec.frame_vae.to(video.device)
        return self.codec.to_model_space(video)

    def loss(self, model, batch):
        x = self._model_space(batch["video"])  # (B, C, T, H, W)
        out = model(x)
        loss = reconstruction_loss(out.reconstruction, x, self.config.autoencoder.loss)
        return loss, {}

    def preview(self, model, batch, out_dir: Path, step: int) -> dict[str, float]:
        from ..evaluation.recon import psnr_per_frame

        video = batch["video"]  # (B, 3, T, H, W) pixels
        out = model(self._model_space(video))
        recon = self.codec.to_pixels(out.reconstruction.float()).clamp(-1, 1)
        content = self.codec.content_to_pixels(out.content_frame.float()).clamp(-1, 1)
        write_preview(Path(out_dir) / f"step-{step:06d}", video, content, recon)
        return {"psnr": psnr_per_frame(recon, video).mean().item()}

    def save_model(self, model, out_dir: Path) -> list[Path]:
        return VideoCodec(model, self.codec.frame_vae).save_pretrained(out_dir)


def write_preview(
    stem: Path,
    video: torch.Tensor,
    content: torch.Tensor,
    recon: torch.Tensor,
    max_videos: int = 4,
    names: tuple[str, str, str] = ("source", "content", "recon"),
) -> list[Path]:
    """``stem.png``: per video, rows of source frames, the content frame, reconstructed frames.
    ``stem.gif`` / ``stem.mp4``: source | content | reconstruction side by side, videos stacked.

    Args:
        video, recon: (B, 3, T, H, W) in [-1, 1]; content: (B, 3, H, W) in [-1, 1].
    """
    from ..data.video_io import write_frame_grid, write_video

    n = min(max_videos, video.shape[0])
    rows, labels = [], []
    for i in range(n):
        rows += [video[i], content[i], recon[i]]
        labels += list(names)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [write_frame_grid(stem.with_suffix(".png"), rows, labels=labels, upscale=2)]
    t = video.shape[2]
    still = content[:n, :, None].expand(-1, -1, t, -1, -1)
    side_by_side = torch.cat([video[:n], still, recon[:n]], dim=-1)  # (n, 3, T, H, 3W)
    stacked = torch.cat(list(side_by_side), dim=-2)  # (3, T, n*H, 3W)
    for suffix in (".gif", ".mp4"):
        paths.append(write_video(stem.with_suffix(suffix), stacked.cpu(), fps=8, upscale=4))
    return paths


class MotionStage(Stage):
    """Stage 3 (paper §3.3): learn to denoise motion latents of the frozen autoencoder, guided
    by the encoder's content frame (at sampling time: the generated one) and the class label.

    Independent of the content stage, so both can train at the same time in two processes.
    """

    name = "motion"

    def __init__(self, config: Config, codec: VideoCodec, num_classes: int = 0):
        from diffusers import DDPMScheduler

        from .losses import PredictionType

        cfg = config.motion
        if cfg.condition not in ("class", "none"):
            raise ValueError(f"motion.condition must be 'class' or 'none', got {cfg.condition!r}")
        if cfg.condition == "class" and num_classes < 1:
            raise ValueError(
                "motion.condition is 'class' but the data has no class labels; use a UCF-101 "
                "style folder (one subfolder per class) or --set motion.condition=none"
            )
        self.config = config
        self.codec = codec.eval().requires_grad_(False)
        self.num_classes = num_classes if cfg.condition == "class" else 0
        self.prediction_type = PredictionType(cfg.prediction_type)
        self.scheduler = DDPMScheduler(
            num_train_timesteps=cfg.num_train_timesteps,
            beta_schedule=cfg.beta_schedule,
            prediction_type=self.prediction_type.value,
        )
        self._model = None

    def model(self):
        from ..models.motion_dit import MotionDiT, motion_dit_preset

        if self._model is None:  # built inside Trainer.train, after the seed is set
            ae = self.codec.autoencoder.config
            kwargs = motion_dit_preset(self.config.motion.preset)
            kwargs.update(self.config.motion.overrides or {})
            self._model = MotionDiT(
                **kwargs,
                motion_channels=ae.motion_channels,
                content_channels=ae.in_channels,
                num_classes=self.num_classes,
            )
        return self._model

    @torch.no_grad()
    def _encode(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        video = batch["video"]
        self.codec.to(video.device)
        content, motion = self.codec.encode(video)  # (B, C, H, W), (B, D_m, T, h+w)
        labels = None
        if self.num_classes:
            labels = batch["label"]
            if (labels < 0).any():
                raise ValueError("class-conditioned motion training needs a label for every video")
        return content, motion, labels

    def loss(self, model, batch):
        from .losses import diffusion_loss

        content, motion, labels = self._encode(batch)
        drop = (
            torch.rand(motion.shape[0], device=motion.device) < self.config.motion.condition_dropout
        )

        def denoiser(noisy, t):
            return model(noisy, t, content, class_labels=labels, drop_condition=drop)

        return diffusion_loss(denoiser, motion, self.scheduler, self.prediction_type), {}

    def sample(self, model, content, labels, num_inference_steps, guidance_scale, generator=None):
        """Motion latents for given content frames (and labels) by DDIM with CFG."""
        from diffusers import DDIMScheduler

        from ..pipelines.denoise import denoise

        ae = self.codec.autoencoder
        h, w = ae.token_grid(*content.shape[-2:])
        shape = (content.shape[0], ae.config.motion_channels, self.config.data.num_frames, h + w)
        return denoise(
            lambda x, t: model.guided(x, t, content, labels, guidance_scale=guidance_scale),
            shape,
            DDIMScheduler.from_config(self.scheduler.config),
            num_inference_steps,
            generator=generator,
            device=content.device,
            progress=False,
        )

    def preview(self, model, batch, out_dir: Path, step: int) -> dict[str, float]:
        """Real content frames + sampled motion, decoded; PSNR against the real video says how
        close the sampled motion is to the one that happened (a rough signal, not a metric)."""
        from ..evaluation.recon import psnr_per_frame

        cfg = self.config.motion
        content, _, labels = self._encode(batch)
        generator = torch.Generator(device=content.device).manual_seed(0)
        motion = self.sample(
            model, content, labels, cfg.preview_steps, cfg.preview_guidance, generator
        )
        video = batch["video"]
        decoded = self.codec.decode(content, motion).float().clamp(-1, 1)
        write_preview(
            Path(out_dir) / f"step-{step:06d}",
            video,
            self.codec.content_to_pixels(content),
            decoded,
        )
        return {"psnr_sampled_motion": psnr_per_frame(decoded, video).mean().item()}

    def save_model(self, model, out_dir: Path) -> list[Path]:
        paths = [Path(out_dir) / "motion", Path(out_dir) / "motion_scheduler"]
        model.save_pretrained(paths[0])
        self.scheduler.save_pretrained(paths[1])
        return paths

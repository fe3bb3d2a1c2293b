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


class DiffusionStage(Stage):
    """What the content and motion stages share: a frozen autoencoder that supplies the
    training pairs, a DDPM noise schedule, condition dropout, and saving model + scheduler."""

    section = "motion"  # the config section: config.motion or config.content

    def __init__(self, config: Config, codec: VideoCodec, num_classes: int = 0):
        from diffusers import DDPMScheduler

        from .losses import PredictionType

        cfg = getattr(config, self.section)
        if cfg.condition not in ("class", "none"):
            raise ValueError(
                f"{self.section}.condition must be 'class' or 'none', got {cfg.condition!r}"
            )
        if cfg.condition == "class" and num_classes < 1:
            raise ValueError(
                f"{self.section}.condition is 'class' but the data has no class labels; use a "
                f"UCF-101 style folder (one subfolder per class) or --set {self.section}.condition=none"
            )
        self.config, self.cfg = config, cfg
        self.codec = codec.eval().requires_grad_(False)
        self.num_classes = num_classes if cfg.condition == "class" else 0
        self.prediction_type = PredictionType(cfg.prediction_type)
        self.scheduler = DDPMScheduler(
            num_train_timesteps=cfg.num_train_timesteps,
            beta_schedule=cfg.beta_schedule,
            prediction_type=self.prediction_type.value,
        )
        self._model = None

    @torch.no_grad()
    def _encode(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(content_frame, motion_latent, class labels or None) of a batch, in model space."""
        video = batch["video"]
        self.codec.to(video.device)
        content, motion = self.codec.encode(video)  # (B, C, H, W), (B, D_m, T, h+w)
        labels = None
        if self.num_classes:
            labels = batch["label"]
            if (labels < 0).any():
                raise ValueError("class-conditioned training needs a label for every video")
        return content, motion, labels

    def _dropped(self, batch_size: int, device) -> torch.Tensor:
        # From the global RNG, which checkpoints restore: resumed runs drop the same rows.
        return torch.rand(batch_size, device=device) < self.cfg.condition_dropout

    def _denoise(self, denoiser, shape, device, generator=None) -> torch.Tensor:
        from diffusers import DDIMScheduler

        from ..pipelines.denoise import denoise

        scheduler = DDIMScheduler.from_config(self.scheduler.config)
        return denoise(
            denoiser, shape, scheduler, self.cfg.preview_steps, generator, device, progress=False
        )

    def save_model(self, model, out_dir: Path) -> list[Path]:
        paths = [Path(out_dir) / self.name, Path(out_dir) / f"{self.name}_scheduler"]
        model.save_pretrained(paths[0])
        self.scheduler.save_pretrained(paths[1])
        return paths


class MotionStage(DiffusionStage):
    """Stage 3 (paper §3.3): learn to denoise motion latents of the frozen autoencoder, guided
    by the encoder's content frame (at sampling time: the generated one) and the class label.

    Independent of the content stage, so both can train at the same time in two processes.
    """

    name = "motion"
    section = "motion"

    def model(self):
        from ..models.motion_dit import MotionDiT, motion_dit_preset

        if self._model is None:  # built inside Trainer.train, after the seed is set
            ae = self.codec.autoencoder.config
            kwargs = motion_dit_preset(self.cfg.preset)
            kwargs.update(self.cfg.overrides or {})
            self._model = MotionDiT(
                **kwargs,
                motion_channels=ae.motion_channels,
                content_channels=ae.in_channels,
                num_classes=self.num_classes,
            )
        return self._model

    def loss(self, model, batch):
        from .losses import diffusion_loss

        content, motion, labels = self._encode(batch)
        drop = self._dropped(motion.shape[0], motion.device)

        def denoiser(noisy, t):
            return model(noisy, t, content, class_labels=labels, drop_condition=drop)

        return diffusion_loss(denoiser, motion, self.scheduler, self.prediction_type), {}

    def sample(self, model, content, labels, guidance_scale, generator=None) -> torch.Tensor:
        """Motion latents (B, D_m, T, h+w) for given content frames (and labels), DDIM + CFG."""
        ae = self.codec.autoencoder
        h, w = ae.token_grid(*content.shape[-2:])
        shape = (content.shape[0], ae.config.motion_channels, self.config.data.num_frames, h + w)
        return self._denoise(
            lambda x, t: model.guided(x, t, content, labels, guidance_scale=guidance_scale),
            shape,
            content.device,
            generator,
        )

    def preview(self, model, batch, out_dir: Path, step: int) -> dict[str, float]:
        """Real content frames + sampled motion, decoded; PSNR against the real video says how
        close the sampled motion is to the one that happened (a rough signal, not a metric)."""
        from ..evaluation.recon import psnr_per_frame

        content, _, labels = self._encode(batch)
        generator = torch.Generator(device=content.device).manual_seed(0)
        motion = self.sample(model, content, labels, self.cfg.preview_guidance, generator)
        video = batch["video"]
        decoded = self.codec.decode(content, motion).float().clamp(-1, 1)
        content_px = self.codec.content_to_pixels(content)
        names = ("source", "content", "sampled")
        write_preview(Path(out_dir) / f"step-{step:06d}", video, content_px, decoded, names=names)
        return {"psnr_sampled_motion": psnr_per_frame(decoded, video).mean().item()}


class ContentStage(DiffusionStage):
    """Stage 2 (paper §3.2): an image diffusion model over content frames.

    ``content.init`` starts from a pretrained image UNet (no new parameters); ``content.target
    = frames`` trains on single frames of the videos instead (image pretraining), and a later
    run with ``content.init`` pointing at that model fine-tunes it on content frames.
    """

    name = "content"
    section = "content"

    def model(self):
        from diffusers import UNet2DConditionModel

        from ..models.content import build_content_unet, num_content_classes

        if self._model is None:
            if self.cfg.target not in ("content_frame", "frames"):
                raise ValueError(
                    f"content.target must be 'content_frame' or 'frames', got {self.cfg.target!r}"
                )
            if self.cfg.init:
                unet = UNet2DConditionModel.from_pretrained(
                    self.cfg.init, subfolder=self.cfg.init_subfolder
                )
                if num_content_classes(unet) != self.num_classes:
                    raise ValueError(
                        f"content.init has {num_content_classes(unet)} classes, the data "
                        f"{self.num_classes}; initialise from a model with the same classes"
                    )
            else:
                ae = self.codec.autoencoder.config
                f = self.codec.frame_vae.downsample if self.codec.latent_mode else 1
                size = (self.config.data.height // f, self.config.data.width // f)
                unet = build_content_unet(
                    self.cfg.preset, ae.in_channels, size, self.num_classes, self.cfg.overrides
                )
            self._model = unet
        return self._model

    def _targets(self, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        content, _, labels = self._encode(batch)
        if self.cfg.target == "frames":
            video = self.codec.to_model_space(batch["video"])  # (B, C, T, H, W)
            pick = torch.randint(0, video.shape[2], (video.shape[0],), device=video.device)
            content = video[torch.arange(video.shape[0], device=video.device), :, pick]
        return content, labels

    def loss(self, model, batch):
        from ..models.content import content_prediction
        from .losses import diffusion_loss

        target, labels = self._targets(batch)
        drop = self._dropped(target.shape[0], target.device)

        def denoiser(noisy, t):
            return content_prediction(model, noisy, t, labels, drop_condition=drop)

        return diffusion_loss(denoiser, target, self.scheduler, self.prediction_type), {}

    def sample(self, model, labels, batch_size, guidance_scale, generator=None, device="cpu"):
        """Content frames (B, C, H, W) in model space, DDIM + CFG."""
        from ..models.content import content_prediction

        size = model.config.sample_size
        h, w = (size, size) if isinstance(size, int) else size
        shape = (batch_size, model.config.in_channels, h, w)
        return self._denoise(
            lambda x, t: content_prediction(model, x, t, labels, guidance_scale=guidance_scale),
            shape,
            device,
            generator,
        )

    def preview(self, model, batch, out_dir: Path, step: int) -> dict[str, float]:
        """A grid: the real content frames (top row) and content frames sampled for the same
        class labels (bottom row)."""
        from ..data.video_io import write_frame_grid

        real, labels = self._targets(batch)
        generator = torch.Generator(device=real.device).manual_seed(0)
        sampled = self.sample(
            model, labels, real.shape[0], self.cfg.preview_guidance, generator, real.device
        )
        rows = [
            torch.stack(list(self.codec.content_to_pixels(x).float().clamp(-1, 1)), dim=1)
            for x in (real, sampled)
        ]  # each (3, B, H, W): one image per column
        out = Path(out_dir) / f"step-{step:06d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_frame_grid(out, rows, labels=["real", "sampled"], upscale=2)
        return {}

"""Pixels <-> the space the CMD autoencoder works in (pixel mode or per-frame VAE latents).

Latent mode (paper §4, text-to-video): every frame goes through a frozen pretrained image VAE
(Stable Diffusion's ``AutoencoderKL``), latents multiplied by the VAE's scaling factor, and the
CMD autoencoder learns on those. :class:`VideoCodec` hides the difference from callers.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL
from einops import rearrange
from torch import nn

from .autoencoder import CMDAutoencoder
from .blocks import named_preset

AUTOENCODER_SUBFOLDER = "autoencoder"
VAE_SUBFOLDER = "vae"

# Frame VAEs this project trains itself (``cmdvideo train vae``): diffusers AutoencoderKL
# configurations, 4 latent channels as Stable Diffusion's.
FRAME_VAE_PRESETS: dict[str, dict] = {
    # 64x64 frames -> 16x8x8 latents (f=8, 12x fewer numbers): four levels, 1.3 M parameters.
    # With 4 channels (48x, Stable Diffusion's ratio) this size reached 20 dB after 500 steps.
    "moving-shapes-64": dict(
        block_out_channels=(32, 64, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=16,
        sample_size=64,
        scaling_factor=1.0,  # per-channel statistics instead (latents_mean / latents_std)
    ),
    # 32x32 frames -> 4x8x8 latents (f=4)
    "moving-shapes-32": dict(
        block_out_channels=(32, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=32,
        scaling_factor=1.0,
    ),
}


def build_frame_vae(preset: str, **overrides):
    """A fresh ``AutoencoderKL`` from :data:`FRAME_VAE_PRESETS` (unknown names list the valid
    ones)."""

    return AutoencoderKL(**{**named_preset(FRAME_VAE_PRESETS, preset, "frame VAE"), **overrides})


class FrameVAE(nn.Module):
    """A frozen image VAE applied frame by frame.

    Args:
        vae: a diffusers ``AutoencoderKL``.
        frames_per_chunk: frames encoded/decoded at once (bounds memory on long videos).
    """

    def __init__(self, vae, frames_per_chunk: int = 16):
        super().__init__()
        self.vae = vae.eval().requires_grad_(False)
        self.frames_per_chunk = frames_per_chunk
        cfg = vae.config
        self.scaling_factor = float(cfg.scaling_factor)
        self.shift_factor = float(getattr(cfg, "shift_factor", None) or 0.0)
        # per-channel statistics (a VAE whose channels have different scales): z -> (z - mean)
        # / std, as diffusers' pipelines do with ``latents_mean`` / ``latents_std``
        stats = [getattr(cfg, "latents_mean", None), getattr(cfg, "latents_std", None)]
        shape = (1, -1, 1, 1)
        mean, std = (
            torch.tensor(v, dtype=torch.float32).view(shape) if v is not None else None
            for v in stats
        )
        self.register_buffer("latents_mean", mean, persistent=False)
        self.register_buffer("latents_std", std, persistent=False)
        self.downsample = 2 ** (len(cfg.block_out_channels) - 1)
        self.latent_channels = int(cfg.latent_channels)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, subfolder: str | None = None) -> FrameVAE:
        """Load an ``AutoencoderKL`` from a local directory or a hub id (e.g. an SD repo with
        ``subfolder="vae"``)."""

        return cls(AutoencoderKL.from_pretrained(str(name_or_path), subfolder=subfolder))

    def _frames(self, fn, video: torch.Tensor) -> torch.Tensor:
        b = video.shape[0]
        frames = rearrange(video, "b c t h w -> (b t) c h w")
        out = torch.cat([fn(chunk) for chunk in frames.split(self.frames_per_chunk)])
        return rearrange(out, "(b t) c h w -> b c t h w", b=b)

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> scaled latents (B, C_latent, T, H/f, W/f).

        Uses the posterior mean, so the same video always gives the same latents.
        """

        def enc(x):
            z = self.vae.encode(x.to(self.vae.dtype)).latent_dist.mean
            if self.latents_mean is not None:
                z = (z - self.latents_mean.to(z)) / self.latents_std.to(z)
            return (z - self.shift_factor) * self.scaling_factor

        return self._frames(enc, video)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, C_latent, T, h, w) -> video (B, 3, T, h*f, w*f) in [-1, 1]."""

        def dec(z):
            z = z.to(self.vae.dtype) / self.scaling_factor + self.shift_factor
            if self.latents_mean is not None:
                z = z * self.latents_std.to(z) + self.latents_mean.to(z)
            return self.vae.decode(z).sample.clamp(-1, 1)

        return self._frames(dec, latents)


class VideoCodec(nn.Module):
    """CMD autoencoder plus, in latent mode, the frame VAE: pixel video <-> (content, motion).

    Content frames live in the autoencoder's space (pixels, or VAE latents in latent mode);
    ``content_to_pixels`` shows them as images.
    """

    def __init__(self, autoencoder: CMDAutoencoder, frame_vae: FrameVAE | None = None):
        super().__init__()
        self.autoencoder = autoencoder
        self.frame_vae = frame_vae
        if frame_vae is not None and frame_vae.latent_channels != autoencoder.config.in_channels:
            raise ValueError(
                f"the VAE makes {frame_vae.latent_channels}-channel latents but the autoencoder "
                f"expects in_channels={autoencoder.config.in_channels}"
            )

    @property
    def latent_mode(self) -> bool:
        return self.frame_vae is not None

    def to_model_space(self, video: torch.Tensor) -> torch.Tensor:
        """Pixel video (B, 3, T, H, W) -> what the autoencoder sees."""
        return self.frame_vae.encode(video) if self.latent_mode else video

    def to_pixels(self, video: torch.Tensor) -> torch.Tensor:
        """Autoencoder-space video -> pixel video in [-1, 1]."""
        return self.frame_vae.decode(video) if self.latent_mode else video

    def content_to_pixels(self, content_frame: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) content frame -> (B, 3, H_px, W_px) image in [-1, 1]."""
        return self.to_pixels(content_frame[:, :, None])[:, :, 0]

    @property
    def motion_scale(self) -> float:
        """The autoencoder's ``motion_scaling_factor`` (1.0 while uncalibrated)."""
        return self.autoencoder.config.motion_scaling_factor or 1.0

    def encode(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel video -> (content_frame, motion_latent), the motion latent multiplied by the
        motion scaling factor: the space the diffusion models work in."""
        return self.encode_model_space(self.to_model_space(video))

    def encode_model_space(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`encode` of a video already in the autoencoder's space (in latent mode the
        frame VAE's latents, e.g. from a frame cache)."""
        content, motion = self.autoencoder.encode(video)
        return content, motion * self.motion_scale

    def decode(self, content_frame: torch.Tensor, motion_latent: torch.Tensor) -> torch.Tensor:
        """(content_frame, scaled motion_latent) -> pixel video (B, 3, T, H, W) in [-1, 1]."""
        motion = motion_latent / self.motion_scale
        return self.to_pixels(
            self.autoencoder.decode(content_frame, motion.to(content_frame.dtype))
        )

    def save_pretrained(self, directory: str | Path) -> list[Path]:
        """Write ``DIR/autoencoder`` (and ``DIR/vae`` in latent mode), safetensors + config."""
        directory = Path(directory)
        paths = [directory / AUTOENCODER_SUBFOLDER]
        self.autoencoder.save_pretrained(paths[0])
        if self.latent_mode:
            paths.append(directory / VAE_SUBFOLDER)
            self.frame_vae.vae.save_pretrained(paths[1])
        return paths

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> VideoCodec:
        """Load from a training output folder (holding ``autoencoder/`` and maybe ``vae/``) or
        from an ``autoencoder`` folder itself."""
        directory = Path(directory)
        if (directory / AUTOENCODER_SUBFOLDER / "config.json").is_file():
            root = directory
            ae_dir = directory / AUTOENCODER_SUBFOLDER
        elif (directory / "config.json").is_file():
            root, ae_dir = directory.parent, directory
        else:
            raise FileNotFoundError(
                f"no autoencoder in {directory}: expected {directory}/autoencoder/config.json "
                "(the folder `cmdvideo train autoencoder --out DIR` writes)"
            )
        autoencoder = CMDAutoencoder.from_pretrained(ae_dir)
        vae_dir = root / VAE_SUBFOLDER
        frame_vae = (
            FrameVAE.from_pretrained(vae_dir) if (vae_dir / "config.json").is_file() else None
        )
        return cls(autoencoder, frame_vae)

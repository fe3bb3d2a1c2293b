"""The CMD video autoencoder: video -> (content frame, motion latent) -> video (paper §3.1).

Shapes (B batch, C channels, T frames, H×W pixels or VAE latents, p patch, h=H/p, w=W/p,
D hidden width, D_m motion channels):

    video          (B, C, T, H, W)   in [-1, 1] (pixel mode) or scaled VAE latents
    content_frame  (B, C, H, W)      convex combination of the frames (weights sum to 1 over T)
    motion_latent  (B, D_m, T, h+w)  in [-1, 1]; [..., :h] per row (vertical), [..., h:] per column
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from einops import rearrange
from torch import nn

from .blocks import VideoTransformer, named_preset, xavier_linear_init

# Architecture presets (the "model size" registry). Training/data settings live in configs/*.yaml.
AUTOENCODER_PRESETS: dict[str, dict] = {
    # CPU-sized: 32x32x16 pixels, 8x8 token grid (about 0.9 s per batch of 8 on 2 cores).
    "tiny": dict(
        in_channels=3,
        patch_size=4,
        hidden_size=96,
        encoder_depth=3,
        decoder_depth=3,
        num_heads=4,
        motion_channels=8,
        output_activation="tanh",
    ),
    # Paper's UCF-101 setting in pixel space at 64x64, 16 frames.
    "ucf101-pixel-64": dict(
        in_channels=3,
        patch_size=4,
        hidden_size=384,
        encoder_depth=8,
        decoder_depth=8,
        num_heads=6,
        motion_channels=16,
        output_activation="tanh",
    ),
    # Paper's text-to-video setting: Stable Diffusion VAE latents (4x64x128 for 512x1024), p=2.
    "webvid-latent-512x1024": dict(
        in_channels=4,
        patch_size=2,
        hidden_size=768,
        encoder_depth=8,
        decoder_depth=8,
        num_heads=12,
        motion_channels=8,
        output_activation="none",
    ),
}


def autoencoder_preset(name: str) -> dict:
    """Architecture kwargs of a named preset; unknown names list the valid ones."""
    return named_preset(AUTOENCODER_PRESETS, name, "autoencoder")


@dataclass
class CMDAutoencoderOutput(BaseOutput):
    """Result of a full forward pass.

    Args:
        reconstruction: (B, C, T, H, W), same layout and range as the input video.
        content_frame: (B, C, H, W).
        motion_latent: (B, D_m, T, h+w), in [-1, 1].
        content_weights: (B, C, T, H, W), softmax over T (sums to 1 at every pixel and channel).
    """

    # Defaults let BaseOutput be rebuilt from a dict, as Accelerate's mixed-precision wrapper does.
    reconstruction: torch.Tensor = None
    content_frame: torch.Tensor = None
    motion_latent: torch.Tensor = None
    content_weights: torch.Tensor = None


class CMDAutoencoder(ModelMixin, ConfigMixin):
    """Content-frame / motion-latent video autoencoder (diffusers-style model).

    Args:
        in_channels: 3 for pixels, 4 for Stable Diffusion VAE latents.
        patch_size: p; H and W must be multiples of it.
        hidden_size: D, the transformer width (encoder and decoder).
        encoder_depth, decoder_depth: factorized blocks in each transformer.
        num_heads: attention heads.
        motion_channels: D_m, channels of the motion latent.
        mlp_ratio: MLP width over D.
        output_activation: "tanh" (pixel mode: squash to [-1, 1]) or "none" (latent mode).
        refine_channels: F > 0 adds a per-frame convolutional refiner after the transformer
            decoder: three 3x3 convolutions (width F) over the decoder's patch output, F
            features per pixel read from the decoder tokens and the content frame, adding a
            correction to the patch output, which a linear patch projection draws soft at the
            edges (tiny config on moving-shapes: +0.9 dB PSNR, +0.03 SSIM over the decoder it
            was added to). Its last convolution starts at zero, so adding it to a trained
            autoencoder leaves the output unchanged. 0 = off (the paper's decoder).
        motion_scaling_factor: multiplies motion latents before diffusion (like the
            ``scaling_factor`` of Stable Diffusion's VAE) so that they have unit variance; set
            by :func:`cmdvideo.training.calibrate.calibrate_motion_scale` after training, None until
            then. ``encode``/``decode`` here work on unscaled latents; ``VideoCodec`` applies it.
    """

    _supports_gradient_checkpointing = True  # both video transformers

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        patch_size: int = 4,
        hidden_size: int = 128,
        encoder_depth: int = 3,
        decoder_depth: int = 3,
        num_heads: int = 4,
        motion_channels: int = 8,
        mlp_ratio: float = 4.0,
        output_activation: str = "tanh",
        motion_scaling_factor: float | None = None,
        refine_channels: int = 0,
    ):
        super().__init__()
        if output_activation not in ("tanh", "none"):
            raise ValueError(
                f"output_activation must be 'tanh' or 'none', got {output_activation!r}"
            )
        c, p, d, dm = in_channels, patch_size, hidden_size, motion_channels
        patch_dim = c * p * p
        # Encoder (§3.1): patchify -> factorized video transformer -> two heads.
        self.patch_embed = nn.Linear(patch_dim, d)
        self.encoder = VideoTransformer(d, encoder_depth, num_heads, mlp_ratio)
        self.content_head = nn.Linear(d, patch_dim)  # per-pixel logits over T
        self.motion_head_x = nn.Conv2d(d, dm, 1)  # from the mean over height: (T, w)
        self.motion_head_y = nn.Conv2d(d, dm, 1)  # from the mean over width: (T, h)
        # Decoder: content patch embedding + motion 1x1 embeddings, broadcast-summed.
        self.content_embed = nn.Linear(patch_dim, d)
        self.motion_embed_x = nn.Conv2d(dm, d, 1)
        self.motion_embed_y = nn.Conv2d(dm, d, 1)
        self.decoder = VideoTransformer(d, decoder_depth, num_heads, mlp_ratio)
        self.output_proj = nn.Linear(d, patch_dim)
        if refine_channels < 0:
            raise ValueError(f"refine_channels must be >= 0 (0 = off), got {refine_channels}")
        self.refine_proj = self.refiner = None
        if refine_channels:
            f = refine_channels
            self.refine_proj = nn.Linear(d, f * p * p)  # F features per pixel from each token
            self.refiner = nn.Sequential(
                nn.Conv2d(2 * c + f, f, 3, padding=1),  # patch output, content frame, features
                nn.SiLU(),
                nn.Conv2d(f, f, 3, padding=1),
                nn.SiLU(),
                nn.Conv2d(f, c, 3, padding=1),
            )
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """All special initialisation in one place."""

        self.apply(xavier_linear_init)
        # Zero content logits: training starts from the plain mean of the frames, a valid
        # content frame, and learns where to deviate from it.
        nn.init.zeros_(self.content_head.weight)
        nn.init.zeros_(self.content_head.bias)
        if self.refiner is not None:  # starts as the identity on the patch output
            nn.init.zeros_(self.refiner[-1].weight)
            nn.init.zeros_(self.refiner[-1].bias)

    def encoder_modules(self) -> list[nn.Module]:
        """Everything that maps a video to (content frame, motion latent): freeze these to train
        the decoder alone, which keeps latents (and diffusion models trained on them) valid."""
        heads = [self.content_head, self.motion_head_x, self.motion_head_y]
        return [self.patch_embed, self.encoder, *heads]

    # -- helpers ---------------------------------------------------------------------------

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) token grid for an H×W input; raises ValueError when H or W is not a multiple of p."""
        p = self.config.patch_size
        if height % p or width % p:
            raise ValueError(
                f"frame size {height}x{width} must be a multiple of the patch size {p}; "
                "resize or crop the videos (data.height / data.width in the config)"
            )
        return height // p, width // p

    def motion_latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        """(D_m, T, h+w) for a video of T frames at H×W."""
        h, w = self.token_grid(height, width)
        return (self.config.motion_channels, num_frames, h + w)

    def _check_video(self, video: torch.Tensor) -> None:
        if video.ndim != 5 or video.shape[1] != self.config.in_channels:
            raise ValueError(
                f"expected a video batch (B, {self.config.in_channels}, T, H, W), "
                f"got shape {tuple(video.shape)}"
            )
        self.token_grid(*video.shape[-2:])

    # -- encoder ---------------------------------------------------------------------------

    def encode_with_weights(
        self, video: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode and also return the content weights.

        Args:
            video: (B, C, T, H, W).

        Returns:
            content_frame (B, C, H, W), motion_latent (B, D_m, T, h+w) in [-1, 1],
            content_weights (B, C, T, H, W) summing to 1 over T.
        """
        self._check_video(video)
        p = self.config.patch_size
        c = video.shape[1]
        tokens = rearrange(video, "b c t (h p1) (w p2) -> b t h w (c p1 p2)", p1=p, p2=p)
        u = self.encoder(self.patch_embed(tokens))  # (B, T, h, w, D)

        # Content frame: softmax over time at every pixel and channel, then a weighted sum.
        logits = rearrange(
            self.content_head(u), "b t h w (c p1 p2) -> b c t (h p1) (w p2)", p1=p, p2=p, c=c
        )  # (B, C, T, H, W)
        content_weights = logits.float().softmax(dim=2).to(video.dtype)
        content_frame = (content_weights * video).sum(dim=2)  # (B, C, H, W)

        # Motion latent: pool one spatial axis away, 1x1 conv to D_m, tanh.
        u = rearrange(u, "b t h w d -> b d t h w")
        motion_x = self.motion_head_x(u.mean(dim=3))  # (B, D_m, T, w)
        motion_y = self.motion_head_y(u.mean(dim=4))  # (B, D_m, T, h)
        motion_latent = torch.tanh(torch.cat([motion_y, motion_x], dim=-1))  # (B, D_m, T, h+w)
        return content_frame, motion_latent, content_weights

    def encode(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """video (B, C, T, H, W) -> content_frame (B, C, H, W), motion_latent (B, D_m, T, h+w)."""
        content_frame, motion_latent, _ = self.encode_with_weights(video)
        return content_frame, motion_latent

    # -- decoder ---------------------------------------------------------------------------

    def decode(self, content_frame: torch.Tensor, motion_latent: torch.Tensor) -> torch.Tensor:
        """Rebuild a video from a content frame and a motion latent (possibly of another video).

        Args:
            content_frame: (B, C, H, W).
            motion_latent: (B, D_m, T, h+w).

        Returns:
            (B, C, T, H, W); in [-1, 1] when output_activation is "tanh".
        """
        p, c, dm = self.config.patch_size, self.config.in_channels, self.config.motion_channels
        if content_frame.ndim != 4 or content_frame.shape[1] != c:
            raise ValueError(
                f"content_frame must be (B, {c}, H, W), got {tuple(content_frame.shape)}"
            )
        h, w = self.token_grid(*content_frame.shape[-2:])
        if (
            motion_latent.ndim != 4
            or motion_latent.shape[1] != dm
            or motion_latent.shape[-1] != h + w
        ):
            raise ValueError(
                f"motion_latent must be (B, {dm}, T, {h + w}) for a {tuple(content_frame.shape[-2:])} "
                f"content frame, got {tuple(motion_latent.shape)}"
            )
        if motion_latent.shape[0] != content_frame.shape[0]:
            raise ValueError("content_frame and motion_latent must have the same batch size")
        t = motion_latent.shape[2]
        e_c = self.content_embed(
            rearrange(content_frame, "b c (h p1) (w p2) -> b h w (c p1 p2)", p1=p, p2=p)
        )  # (B, h, w, D)
        e_y = self.motion_embed_y(motion_latent[..., :h])  # (B, D, T, h)
        e_x = self.motion_embed_x(motion_latent[..., h:])  # (B, D, T, w)
        e = (
            e_c[:, None]  # (B, 1, h, w, D)
            + rearrange(e_y, "b d t h -> b t h 1 d")
            + rearrange(e_x, "b d t w -> b t 1 w d")
        )  # (B, T, h, w, D): e[t, i, j] = e_c[i, j] + e_y[t, i] + e_x[t, j]
        tokens = self.decoder(e)  # (B, T, h, w, D)
        out = self.output_proj(tokens)  # (B, T, h, w, C*p*p)
        video = rearrange(out, "b t h w (c p1 p2) -> b c t (h p1) (w p2)", p1=p, p2=p, c=c)
        if self.refiner is not None:
            video = video + self._refine(video, content_frame, tokens)
        if self.config.output_activation == "tanh":
            video = torch.tanh(video)
        assert video.shape[2] == t
        return video  # (B, C, T, H, W)

    def _refine(
        self, video: torch.Tensor, content_frame: torch.Tensor, tokens: torch.Tensor
    ) -> torch.Tensor:
        """The refiner's correction (B, C, T, H, W) to the patch output ``video``."""
        p, t = self.config.patch_size, video.shape[2]
        features = rearrange(
            self.refine_proj(tokens), "b t h w (f p1 p2) -> (b t) f (h p1) (w p2)", p1=p, p2=p
        )  # (B*T, F, H, W)
        frames = rearrange(video, "b c t h w -> (b t) c h w")
        content = content_frame.repeat_interleave(t, dim=0)  # (B*T, C, H, W)
        correction = self.refiner(torch.cat([frames, content, features], dim=1))
        return rearrange(correction, "(b t) c h w -> b c t h w", t=t)

    def forward(self, video: torch.Tensor) -> CMDAutoencoderOutput:
        content_frame, motion_latent, content_weights = self.encode_with_weights(video)
        reconstruction = self.decode(content_frame, motion_latent)
        return CMDAutoencoderOutput(reconstruction, content_frame, motion_latent, content_weights)

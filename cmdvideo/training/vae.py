"""Training a frame VAE (``cmdvideo train vae``): a diffusers ``AutoencoderKL`` on single frames
of the training videos, for latent mode where no pretrained VAE fits the data — CMD's main
setting diffuses in the latent space of Stable Diffusion's VAE (paper §4), and the embedded
moving-shapes dataset gets its own small one this way.

Saved in diffusers' layout (``OUT/vae/``), so ``autoencoder.vae=OUT`` (with
``autoencoder.vae_subfolder=vae``) loads it exactly as it loads Stable Diffusion's. After
training, the per-channel mean and standard deviation of the latents are measured and stored
in its config (``latents_mean`` / ``latents_std``): the channels of a small VAE come out at
very different scales, and the CMD autoencoder and the diffusion models want them at unit
scale.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from ..config import Config
from ..data import iter_batches
from ..data.video_io import write_frame_grid
from ..evaluation.quality import psnr_per_frame
from ..models.codec import FRAME_VAE_PRESETS, FrameVAE, build_frame_vae
from .losses import reconstruction_loss
from .stage import Stage, TrainableModules

STATS_VIDEOS = 256  # videos whose frames give the latent statistics


def edge_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the horizontal and vertical finite differences of two (N, C, H, W) images."""

    def grads(x):
        return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]

    (px, py), (tx, ty) = grads(prediction.float()), grads(target.float())
    return F.l1_loss(px, tx) + F.l1_loss(py, ty)


def video_frames(video: torch.Tensor, per_video: int, generator=None) -> torch.Tensor:
    """``per_video`` random frames of each (B, 3, T, H, W) video -> (B * per_video, 3, H, W)."""
    b, _, t = video.shape[:3]
    pick = torch.randint(0, t, (b, per_video), generator=generator).to(video.device)
    frames = video.permute(0, 2, 1, 3, 4)[torch.arange(b, device=video.device)[:, None], pick]
    return frames.flatten(0, 1)  # (B*K, 3, H, W)


class FrameVAEStage(Stage):
    """Reconstruct frames through the VAE's latent: L1/L2 + ``kl_weight`` × KL (+ an edge
    term); previews and the saved model as for every stage."""

    name = "vae"

    def __init__(self, config: Config):
        cfg = config.vae
        if cfg.preset not in FRAME_VAE_PRESETS:
            raise ValueError(
                f"unknown vae.preset {cfg.preset!r}; choose one of {sorted(FRAME_VAE_PRESETS)}"
            )
        if cfg.frames_per_video < 1 or cfg.kl_weight < 0 or cfg.edge_weight < 0:
            raise ValueError("vae.frames_per_video must be >= 1, kl_weight and edge_weight >= 0")
        self.config, self.cfg = config, cfg

    def model(self) -> TrainableModules:
        if self.cfg.init:  # continue training a VAE (its architecture, not the preset's)
            init = Path(self.cfg.init)
            vae = AutoencoderKL.from_pretrained(init / "vae" if (init / "vae").is_dir() else init)
        else:
            vae = build_frame_vae(self.cfg.preset, **self.cfg.overrides)
        f = 2 ** (len(vae.config.block_out_channels) - 1)
        data = self.config.data
        if data.height % f or data.width % f:
            raise ValueError(
                f"vae.preset {self.cfg.preset!r} downsamples by {f}: data.height/width "
                f"({data.height}x{data.width}) must be multiples of it"
            )
        if self.config.train.gradient_checkpointing:
            vae.enable_gradient_checkpointing()
        return TrainableModules(self, vae=vae)

    def objective(self, modules, batch):
        x = video_frames(batch["video"], self.cfg.frames_per_video)  # (N, 3, H, W) in [-1, 1]
        posterior = modules.vae.encode(x).latent_dist
        recon = modules.vae.decode(posterior.sample()).sample
        rec = reconstruction_loss(recon, x, self.cfg.loss)
        kl = posterior.kl().mean() / x[0].numel()  # per pixel, comparable with the recon term
        loss = rec + self.cfg.kl_weight * kl
        extras = {"reconstruction": rec.item(), "kl": kl.item()}
        if self.cfg.edge_weight > 0:
            edges = edge_loss(recon, x)
            loss = loss + self.cfg.edge_weight * edges
            extras["edges"] = edges.item()
        return loss, extras

    @torch.no_grad()
    def preview(self, model, batch, out_dir: Path, step: int) -> dict[str, float]:
        video = batch["video"]  # (B, 3, T, H, W)
        b, _, t = video.shape[:3]
        frames = video.permute(0, 2, 1, 3, 4).flatten(0, 1)  # (B*T, 3, H, W)
        recon = torch.cat([model.vae(chunk).sample for chunk in frames.split(32)]).clamp(-1, 1)
        recon = recon.view(b, t, *recon.shape[1:]).permute(0, 2, 1, 3, 4)  # (B, 3, T, H, W)
        rows, labels = [], []
        for i in range(min(b, 4)):
            rows += [video[i], recon[i]]
            labels += ["source", "recon"]
        path = Path(out_dir) / f"step-{step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_frame_grid(path, rows, labels=labels, upscale=2)
        return {"psnr": psnr_per_frame(recon, video).mean().item()}

    def save_model(self, model, out_dir: Path) -> list[Path]:
        path = Path(out_dir) / self.name
        model.vae.save_pretrained(path)
        return [path]

    def after_training(self, out_dir: Path, dataset, device) -> dict | None:
        """Store the per-channel latent statistics in the saved VAE's config."""

        path = Path(out_dir) / self.name
        frame_vae = FrameVAE.from_pretrained(path).to(device)
        stats = latent_statistics(frame_vae.vae, dataset, STATS_VIDEOS, device)
        frame_vae.vae.register_to_config(**stats)
        frame_vae.vae.save_pretrained(path)
        return {"latents_mean": stats["latents_mean"], "latents_std": stats["latents_std"]}


@torch.no_grad()
def latent_statistics(vae, dataset, num_videos: int, device="cpu", batch_size: int = 8) -> dict:
    """Per-channel mean and standard deviation of the posterior means of every frame of the
    first ``num_videos`` videos: {"latents_mean": [...], "latents_std": [...]}."""
    total = total_sq = count = 0
    for batch in iter_batches(dataset, num_videos, batch_size):
        frames = batch["video"].to(device).permute(0, 2, 1, 3, 4).flatten(0, 1)
        z = vae.encode(frames).latent_dist.mean.double()  # (N, C, h, w)
        total = total + z.sum(dim=(0, 2, 3))
        total_sq = total_sq + (z * z).sum(dim=(0, 2, 3))
        count += z.numel() // z.shape[1]
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(1e-12).sqrt()
    return {
        "latents_mean": [round(v, 5) for v in mean.tolist()],
        "latents_std": [round(v, 5) for v in std.tolist()],
    }

"""The motion scaling factor of a trained autoencoder (as Stable Diffusion's VAE has a
``scaling_factor``): the diffusion stages work on motion latents scaled to unit variance."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data import batch_source, iter_batches
from ..models.codec import VideoCodec


@torch.no_grad()
def calibrate_motion_scale(
    codec: VideoCodec, dataset, num_videos: int = 256, batch_size: int = 16, device="cpu"
) -> tuple[float, int]:
    """Set the autoencoder's ``motion_scaling_factor`` to 1 / std of its motion latents over the
    first ``num_videos`` videos of ``dataset``, so that the motion diffusion model sees
    unit-variance data.

    Returns:
        (factor, number of videos actually read: at most ``len(dataset)``).
    """
    n = min(num_videos, len(dataset))
    if n < 1:
        raise ValueError("calibrating the motion scale needs at least one video")
    codec.to(device).eval()  # the frame VAE too (latent mode): to_model_space runs it
    total, total_sq, count = 0.0, 0.0, 0
    for batch in iter_batches(dataset, n, batch_size):
        if batch_source(batch) == "frames":  # a frame cache: the VAE's latents already
            x = batch["frames"].to(device)
        else:
            x = codec.to_model_space(batch["video"].to(device))
        _, motion = codec.autoencoder.encode(x)
        motion = motion.double()
        total += motion.sum().item()
        total_sq += (motion**2).sum().item()
        count += motion.numel()
    mean = total / count
    std = max(total_sq / count - mean**2, 0.0) ** 0.5
    if not std > 1e-8:
        raise ValueError("motion latents are constant; is the autoencoder trained?")
    factor = round(1.0 / std, 5)
    codec.autoencoder.register_to_config(motion_scaling_factor=factor)
    return factor, n


def calibrate_folder(model_dir: str | Path, dataset, num_videos: int = 256, device="cpu") -> dict:
    """Measure and store (in its config) the motion scaling factor of an autoencoder: a folder
    written by ``cmdvideo train autoencoder`` or the ``autoencoder`` folder inside it.
    Returns {"factor", "num_videos"} (videos actually read)."""
    model_dir = Path(model_dir)
    codec = VideoCodec.from_pretrained(model_dir)
    root = model_dir if (model_dir / "autoencoder").is_dir() else model_dir.parent
    factor, used = calibrate_motion_scale(codec, dataset, num_videos, device=device)
    codec.to("cpu").save_pretrained(root)
    return {"factor": factor, "num_videos": used}

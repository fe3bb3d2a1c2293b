"""Reconstruction quality of the autoencoder: PSNR and SSIM per frame, averaged.

Both are computed on frames mapped from [-1, 1] to [0, 1] (data range 1), the convention of
image/video autoencoder papers; PSNR is averaged in dB over frames, then videos.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..data import collate_videos, iter_batches
from ..data.moving_shapes import MovingShapes, VideoFactors, render_video
from .domain import at_classifier_size, domain_accuracy
from .fvd import FVDProtocol, compute_fvd
from .i3d import load_i3d
from .quality import psnr_per_frame, ssim_per_frame


def compression_ratio(codec, num_frames: int, height: int, width: int) -> dict:
    """Numbers in the video the autoencoder sees vs. in (content frame + motion latent)."""
    ae = codec.autoencoder
    f = codec.frame_vae.downsample if codec.latent_mode else 1
    c, hh, ww = ae.config.in_channels, height // f, width // f
    motion = math.prod(ae.motion_latent_shape(num_frames, hh, ww))
    video = c * num_frames * hh * ww
    return {
        "video_numbers": video,
        "content_frame_numbers": c * hh * ww,
        "motion_latent_numbers": motion,
        "compression_ratio": video / (c * hh * ww + motion),
    }


@torch.no_grad()
def evaluate_reconstruction(
    codec,
    dataset: Dataset,
    num_videos: int = 256,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict:
    """PSNR/SSIM of ``codec.decode(*codec.encode(video))`` against the input on the first
    ``num_videos`` items of ``dataset`` (deterministic: held-out seeds / center crops).

    Returns:
        dict with psnr, psnr_std (over videos), ssim, num_videos, psnr_by_class (class name ->
        mean PSNR, for labelled data), and the compression numbers.
    """
    if num_videos < 1:
        raise ValueError("num_videos must be at least 1")
    num_videos = min(num_videos, len(dataset))
    subset = torch.utils.data.Subset(dataset, range(num_videos))
    loader = DataLoader(subset, batch_size=batch_size, collate_fn=collate_videos)
    codec = codec.to(device).eval()
    psnrs, ssims, labels = [], [], []
    shape = None
    for batch in tqdm(loader, desc="eval autoencoder", disable=not progress):
        video = batch["video"].to(device)
        shape = video.shape
        recon = codec.decode(*codec.encode(video)).float()
        psnrs.append(psnr_per_frame(recon, video).mean(dim=1).cpu())
        ssims.append(ssim_per_frame(recon, video).mean(dim=1).cpu())
        labels.append(batch["label"])
    psnr_v, ssim_v, label_v = torch.cat(psnrs), torch.cat(ssims), torch.cat(labels)
    names = list(dataset.classes)
    by_class = {
        (names[c] if 0 <= c < len(names) else str(c)): psnr_v[label_v == c].mean().item()
        for c in sorted(set(label_v.tolist()))
        if c >= 0
    }
    return {
        "psnr": psnr_v.mean().item(),
        "psnr_std": psnr_v.std().item() if len(psnr_v) > 1 else 0.0,
        "ssim": ssim_v.mean().item(),
        "num_videos": len(psnr_v),
        "psnr_by_class": by_class,
        "video_shape": list(shape[1:]),
        **compression_ratio(codec, shape[2], shape[3], shape[4]),
    }


@torch.no_grad()
def decomposition_probe(
    codec,
    num_pairs: int = 200,
    num_frames: int = 16,
    height: int = 32,
    width: int = 32,
    batch_size: int = 50,
    device: str | torch.device = "cpu",
    classifier=None,
    world: str = "upright",
) -> dict:
    """Does the content frame carry the appearance and the motion latent the motion? (CMD's
    decomposition, measured with moving-shapes' known factors.)

    For held-out pairs (A, B) the target is A's appearance rendered with B's motion. Reported
    PSNRs against that target: decode(content of A, motion of B) — the swap — beside the
    trivial baselines decode(A, A) (right appearance, wrong motion) and decode(B, B) (right
    motion, wrong appearance). A decomposed autoencoder puts the swap above both. With a
    ``classifier`` (the shipped moving-shapes one) also how often the swap moves as B does.

    Returns:
        {"swap_psnr", "same_a_psnr", "same_b_psnr", "num_pairs"} (dB, mean over pairs), and
        with a classifier "swap_motion_accuracy" (the swap's motion class is B's) and
        "target_motion_accuracy" (the same for the targets: the classifier's own ceiling).
    """

    if num_pairs < 1:
        raise ValueError("num_pairs must be at least 1")
    data = MovingShapes(
        num_videos=10**6, num_frames=num_frames, height=height, width=width, seed=1, world=world
    )
    codec = codec.to(device).eval()
    sums = {"swap_psnr": 0.0, "same_a_psnr": 0.0, "same_b_psnr": 0.0}
    swaps, targets, labels = [], [], []
    for start in range(0, num_pairs, batch_size):
        pairs = [(i, num_pairs + i) for i in range(start, min(num_pairs, start + batch_size))]
        video_a = torch.stack([data[a]["video"] for a, _ in pairs]).to(device)
        video_b = torch.stack([data[b]["video"] for _, b in pairs]).to(device)
        target = torch.stack(
            [
                render_video(
                    VideoFactors(data.factors(a).appearance, data.factors(b).motion),
                    num_frames,
                    height,
                    width,
                )
                for a, b in pairs
            ]
        ).to(device)
        content_a, motion_a = codec.encode(video_a)
        content_b, motion_b = codec.encode(video_b)
        swap = codec.decode(content_a, motion_b)
        for name, video in (
            ("swap_psnr", swap),
            ("same_a_psnr", codec.decode(content_a, motion_a)),
            ("same_b_psnr", codec.decode(content_b, motion_b)),
        ):
            sums[name] += psnr_per_frame(video.float(), target).mean(dim=1).sum().item()
        if classifier is not None:
            swaps.append(at_classifier_size(swap.float().clamp(-1, 1).cpu()))
            targets.append(at_classifier_size(target.float().cpu()))
            labels += [data.factors(b).label for _, b in pairs]
    result = {**{k: v / num_pairs for k, v in sums.items()}, "num_pairs": num_pairs}
    if classifier is not None:
        for key, videos in (("swap_motion_accuracy", swaps), ("target_motion_accuracy", targets)):
            scores = domain_accuracy(classifier, torch.cat(videos), labels=labels)
            result[key] = scores["motion_accuracy"]
    return result


@torch.no_grad()
def reconstruction_fvd(
    codec, dataset: Dataset, i3d, num_videos: int, batch_size: int = 16, device="cpu"
) -> dict:
    """R-FVD: FVD between the first ``num_videos`` videos of ``dataset`` and their
    reconstructions (``i3d``: a loaded I3D network or a weights path for ``load_i3d``)."""

    i3d = load_i3d(i3d) if isinstance(i3d, (str, Path)) else i3d
    n = min(num_videos, len(dataset))
    codec = codec.to(device).eval()
    real = [batch["video"] for batch in iter_batches(dataset, n, batch_size)]
    recon = [codec.decode(*codec.encode(b.to(device))).float().cpu() for b in real]
    return compute_fvd(i3d, real, recon, FVDProtocol(num_real=n, num_generated=n), device=device)

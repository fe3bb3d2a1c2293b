"""Preview files a training run writes (``OUT/previews/step-NNNNNN.*``)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.video_io import write_frame_grid, write_video


def write_preview(
    stem: Path,
    video: torch.Tensor,
    content: torch.Tensor,
    recon: torch.Tensor,
    max_videos: int = 4,
    names: tuple[str, str, str] = ("source", "content", "recon"),
    animated: bool = True,
) -> list[Path]:
    """``stem.png``: per video, rows of source frames, the content frame, reconstructed frames.
    ``stem.gif`` / ``stem.mp4`` (unless ``animated`` is False): source | content |
    reconstruction side by side, videos stacked.

    Args:
        video, recon: (B, 3, T, H, W) in [-1, 1]; content: (B, 3, H, W) in [-1, 1].
    """

    n = min(max_videos, video.shape[0])
    rows, labels = [], []
    for i in range(n):
        rows += [video[i], content[i], recon[i]]
        labels += list(names)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [write_frame_grid(stem.with_suffix(".png"), rows, labels=labels, upscale=2)]
    if not animated:
        return paths
    t = video.shape[2]
    still = content[:n, :, None].expand(-1, -1, t, -1, -1)
    side_by_side = torch.cat([video[:n], still, recon[:n]], dim=-1)  # (n, 3, T, H, 3W)
    stacked = torch.cat(list(side_by_side), dim=-2)  # (3, T, n*H, 3W)
    for suffix in (".gif", ".mp4"):
        paths.append(write_video(stem.with_suffix(suffix), stacked.cpu(), fps=8, upscale=4))
    return paths

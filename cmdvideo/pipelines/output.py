"""What :class:`cmdvideo.pipelines.cmd.CMDPipeline` returns, in the layout asked for."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers.utils import BaseOutput
from PIL import Image


@dataclass
class CMDPipelineOutput(BaseOutput):
    """What :class:`CMDPipeline` returns.

    Attributes:
        frames: videos in [0, 1] — ``np``: array (B, T, H, W, 3); ``pt``: tensor
            (B, T, 3, H, W); ``pil``: a list (per video) of lists of PIL images (as diffusers'
            text-to-video pipelines do).
        content_frames: the generated content frames shown as images, same kind as
            ``frames`` with no T axis.
    """

    frames: np.ndarray | torch.Tensor | list
    content_frames: np.ndarray | torch.Tensor | list


def to_output_type(video: torch.Tensor, output_type: str):
    """(B, T, 3, H, W) in [0, 1] -> the requested output type."""
    if output_type == "pt":
        return video
    array = video.permute(0, 1, 3, 4, 2).numpy()  # (B, T, H, W, 3)
    if output_type == "np":
        return array

    return [[Image.fromarray((f * 255).round().astype(np.uint8)) for f in v] for v in array]

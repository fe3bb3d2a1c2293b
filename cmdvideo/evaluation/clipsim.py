"""CLIPSIM: how well video frames match their prompt, by a CLIP model loaded from a local folder.

Per frame: cosine between the L2-normalised image embedding and the L2-normalised text
embedding; averaged over the frames of a video, then over videos. No ×100 and no clamping at 0
(some papers report 100·max(cos, 0)); say so when comparing numbers. Default model: CLIP ViT-B/32
(``openai/clip-vit-base-patch32``), which must already be on disk: nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch

from ..data.video_io import from_uint8, read_video
from ..models.text import require_transformers
from ..pipelines.sample_folder import read_sample_folder

CLIP_ENV = "CMDVIDEO_CLIP"
DEFAULT_CLIP = "openai/clip-vit-base-patch32"


def load_clip(path: str | Path | None = None):
    """(CLIPModel, CLIPProcessor) from a local directory (``path`` or ``$CMDVIDEO_CLIP``)."""

    transformers = require_transformers("CLIPSIM (a CLIP model)")
    path = path or os.environ.get(CLIP_ENV)
    if not path or not Path(path).is_dir():
        raise FileNotFoundError(
            f"CLIPSIM needs a local CLIP model folder (e.g. {DEFAULT_CLIP}, saved with "
            f"save_pretrained or downloaded elsewhere); give --clip DIR or set {CLIP_ENV}. "
            + (f"{path!r} is not a directory." if path else "")
        )
    model = transformers.CLIPModel.from_pretrained(str(path)).eval()
    processor = transformers.CLIPProcessor.from_pretrained(str(path))
    return model, processor


@torch.no_grad()
def clipsim(
    model,
    processor,
    videos: torch.Tensor | Iterable[torch.Tensor],
    prompts: list[str],
    device="cpu",
) -> dict:
    """CLIPSIM of videos against one prompt each, streamed: ``videos`` is a (B, 3, T, H, W)
    tensor or any iterable of (3, T, H, W) videos in [-1, 1] (only one is held at a time).

    Returns:
        {"clipsim": mean over videos, "per_video": [...], "num_videos": B}.
    """
    prompts = list(prompts)
    if torch.is_tensor(videos) and len(prompts) != videos.shape[0]:
        raise ValueError(f"{videos.shape[0]} videos but {len(prompts)} prompts")
    model = model.to(device)
    per_video = []
    for video, prompt in zip(videos, prompts):
        text = processor(text=[prompt], return_tensors="pt", padding=True, truncation=True)
        text_emb = model.get_text_features(**{k: v.to(device) for k, v in text.items()})
        text_emb = getattr(text_emb, "pooler_output", text_emb)
        text_emb = torch.nn.functional.normalize(text_emb.float(), dim=-1)[0]  # (D,)
        frames = ((video.permute(1, 2, 3, 0).float().clamp(-1, 1) + 1) * 127.5).round()
        images = [f.to(torch.uint8).cpu().numpy() for f in frames]  # T x (H, W, 3)
        pixels = processor(images=images, return_tensors="pt")["pixel_values"].to(device)
        image_emb = model.get_image_features(pixel_values=pixels)
        image_emb = getattr(image_emb, "pooler_output", image_emb)
        image_emb = torch.nn.functional.normalize(image_emb.float(), dim=-1)  # (T, D)
        per_video.append((image_emb @ text_emb).mean().item())
    if len(per_video) != len(prompts):
        raise ValueError(f"{len(per_video)} videos but {len(prompts)} prompts")
    return {
        "clipsim": sum(per_video) / len(per_video),
        "per_video": per_video,
        "num_videos": len(per_video),
        "definition": "cosine of L2-normalised CLIP image and text embeddings, mean over frames, "
        "then over videos; no x100, no clamping",
    }


def clipsim_of_folder(model, processor, folder: str | Path, device="cpu") -> dict:
    """CLIPSIM of a ``cmdvideo sample`` folder (its videos against the prompts it lists)."""

    listed = read_sample_folder(folder)
    videos = (from_uint8(read_video(path)) for path, _ in listed)
    return clipsim(model, processor, videos, [prompt for _, prompt in listed], device)

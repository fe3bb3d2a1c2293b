"""The sampling steps :class:`cmdvideo.pipelines.cmd.CMDPipeline`'s entry points share, called
by keyword: the settings of one call resolved once (:class:`Sampling`), a content frame refined
under a prompt (SDEdit), motion sampled for content frames, and the video decoded from them —
clip by clip beyond the training length (motion-latent inpainting, cross-faded overlaps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..models.content import num_content_classes
from .denoise import sample_content, sample_motion


@dataclass(frozen=True)
class Sampling:
    """One call's sampling settings, its defaults taken from the pipeline's config once."""

    steps: int
    content_guidance: float
    motion_guidance: float
    rescale: float
    generator: torch.Generator | None
    progress: bool

    @classmethod
    def of(
        cls,
        pipe,
        *,
        num_inference_steps=None,
        guidance_scale=None,
        content_guidance_scale=None,
        motion_guidance_scale=None,
        guidance_rescale=None,
        generator=None,
    ) -> Sampling:
        content, motion = pipe.guidance_scales(
            guidance_scale, content_guidance_scale, motion_guidance_scale
        )
        return cls(
            steps=pipe.default_steps(num_inference_steps),
            content_guidance=content,
            motion_guidance=motion,
            rescale=pipe.default_rescale(guidance_rescale),
            generator=generator,
            progress=not getattr(pipe, "_progress_bar_config", {}).get("disable", False),
        )


def conditions(
    pipe, prompt, class_labels, device
) -> tuple[list[str] | None, torch.Tensor | None, int]:
    """(prompts, label ids, n) of one call: one label is repeated for every prompt."""
    prompts = [prompt] if isinstance(prompt, str) else (list(prompt) if prompt else None)
    labels = None if class_labels is None else pipe._class_ids(class_labels, device)
    n = len(prompts) if prompts is not None else (len(labels) if labels is not None else 1)
    if labels is not None:
        labels = labels.expand(n)
    return prompts, labels, n


def generate_content(
    pipe, *, batch: int, labels, text, sampling: Sampling, device, size=None, **existing
) -> torch.Tensor:
    """Content frames (B, C, H, W) from the content model, with CFG: new ones, or ``existing``
    ones refined (``init``/``strength``, see :func:`refine_content`)."""
    model = pipe.content_model  # a UNet or a DiT
    return sample_content(
        model,
        pipe.content_scheduler,
        batch,
        class_labels=labels if num_content_classes(model) else None,
        text=text.content,
        null_text=text.content_null,
        guidance_scale=sampling.content_guidance,
        num_inference_steps=sampling.steps,
        generator=sampling.generator,
        device=device,
        progress=sampling.progress,
        guidance_rescale=sampling.rescale,
        size=size or pipe.content_size(),
        **existing,
    )


def refine_content(pipe, content, *, labels, text, strength: float, sampling: Sampling):
    """SDEdit of content frames under the prompt / class: noise to ``strength``, denoise."""
    return generate_content(
        pipe,
        batch=content.shape[0],
        labels=labels,
        text=text,
        sampling=sampling,
        device=content.device,
        size=tuple(content.shape[-2:]),
        init=content.to(pipe.content_model.dtype),
        strength=strength,
    )


def motion_for(pipe, content, *, labels, text, num_frames: int, sampling: Sampling, **existing):
    """Motion latents for content frames, guided by them and the prompt / class (``existing``:
    ``init``/``strength`` or ``known``/``known_mask`` as in :func:`denoise.denoise`)."""
    model = pipe.motion_model
    h, w = pipe.autoencoder.token_grid(*content.shape[-2:])
    return sample_motion(
        model,
        pipe.motion_scheduler,
        content.to(model.dtype),
        num_frames,
        h + w,
        class_labels=labels if model.config.num_classes else None,
        text_embeds=text.motion_pooled,
        guidance_scale=sampling.motion_guidance,
        num_inference_steps=sampling.steps,
        generator=sampling.generator,
        progress=sampling.progress,
        guidance_rescale=sampling.rescale,
        **existing,
    )


def crossfade_clips(clips: list[torch.Tensor], overlap: int) -> torch.Tensor:
    """Clips (B, C, T_k, H, W), each starting ``overlap`` frames before the previous one ends,
    -> one video: linear cross-fade over every overlap."""
    video = clips[0]
    for clip in clips[1:]:
        if overlap:
            w = torch.arange(1, overlap + 1, dtype=video.dtype) / (overlap + 1)
            w = w.view(1, 1, -1, 1, 1).to(video.device)
            blended = video[:, :, -overlap:] * (1 - w) + clip[:, :, :overlap] * w
            video = torch.cat([video[:, :, :-overlap], blended], dim=2)
        video = torch.cat([video, clip[:, :, overlap:]], dim=2)
    return video


def motion_video(
    pipe, content, *, labels, text, num_frames: int, sampling: Sampling, overlap: int | None = None
) -> torch.Tensor:
    """Sample the motion for ``content`` and decode: pixel video (B, 3, T, H, W) in [-1, 1].
    Beyond the training length, clip by clip: each next clip's first ``overlap`` frames
    (default half a clip) are the last ones of the clip before, encoded and their motion kept
    while the rest is sampled; the overlaps are cross-faded."""
    codec, clip_len = pipe.codec, int(pipe.config.num_frames)
    given = dict(labels=labels, text=text, sampling=sampling)
    if num_frames <= clip_len:  # the motion DiT makes whole patches along time
        patch = pipe.motion_model.config.motion_patch_size
        frames = min(clip_len, math.ceil(num_frames / patch) * patch)
        motion = motion_for(pipe, content, num_frames=frames, **given)
        return codec.decode(content.to(pipe.autoencoder.dtype), motion)[:, :, :num_frames]
    overlap = clip_len // 2 if overlap is None else int(overlap)
    ae, scale = pipe.autoencoder, codec.motion_scale
    content = content.to(ae.dtype)
    motion = motion_for(pipe, content, num_frames=clip_len, **given)
    clip = ae.decode(content, motion.to(ae.dtype) / scale)  # model space (B, C, T, H, W)
    clips, length = [codec.to_pixels(clip)], clip_len
    mask = torch.zeros(1, 1, clip_len, 1, dtype=torch.bool, device=content.device)
    mask[:, :, :overlap] = True
    while length < num_frames:
        # The next clip's content frame and the motion of its first frames come from encoding
        # the last frames, held on the last one to the clip's length — from the pixels (in
        # latent mode: encoded again by the frame VAE), which keeps each clip's errors from
        # compounding in latent space.
        tail = codec.to_model_space(clips[-1][:, :, -overlap:].to(clip.dtype))
        held = tail[:, :, -1:].expand(-1, -1, clip_len - overlap, -1, -1)
        content, known = ae.encode(torch.cat([tail, held], dim=2))
        motion = motion_for(
            pipe, content, num_frames=clip_len, known=known * scale, known_mask=mask, **given
        )
        clip = ae.decode(content, motion.to(ae.dtype) / scale)
        clips.append(codec.to_pixels(clip))
        length += clip_len - overlap
    return crossfade_clips(clips, overlap)[:, :, :num_frames]

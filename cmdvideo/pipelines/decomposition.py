"""What the content / motion split gives a video model for free, as :class:`CMDPipeline`
methods (a mixin, so that cmd.py keeps text-to-video):

- :meth:`~DecompositionMixin.image_to_video`: the user's image is the content frame; only the
  motion is sampled (optionally the content model refines the image first, SDEdit).
- :meth:`~DecompositionMixin.transfer_motion`: decode(content of A, motion of B).
- :meth:`~DecompositionMixin.edit_video`: re-denoise a video's content frame under a new prompt
  and keep its motion, or keep the content and resample the motion.
- long videos (``num_frames`` beyond the training length, :meth:`CMDPipeline.__call__`): clip by
  clip, each next clip's first frames fixed to the last frames of the one before (motion-latent
  inpainting) and cross-faded.

Images and videos in, in any of the layouts users have: a file path, PIL images, numpy arrays
(H, W, 3) / (T, H, W, 3) uint8 or float in [0, 1], torch tensors (3, H, W) / (T, 3, H, W) in
[0, 1] (what the pipeline's ``output_type="pt"`` gives), each optionally batched. They are
center-cropped to the model's aspect and resized to its frame size.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..models.content import num_content_classes
from ..runtime import uses_cpu_threads
from .arguments import EDIT_KINDS, IMAGE_SUFFIXES, check_alpha, image_array  # noqa: F401
from .denoise import sample_content, sample_motion

logger = logging.getLogger(__name__)


# -- inputs --------------------------------------------------------------------------------


def _resize_crop(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> (N, 3, *size): center crop to the aspect, then resize."""
    h, w = frames.shape[-2:]
    th, tw = size
    if h * tw > w * th:  # too tall
        ch, cw = max(1, round(w * th / tw)), w
    else:
        ch, cw = h, max(1, round(h * tw / th))
    top, left = (h - ch) // 2, (w - cw) // 2
    frames = frames[..., top : top + ch, left : left + cw]
    if (ch, cw) == (th, tw):
        return frames
    return F.interpolate(frames, size=size, mode="bilinear", antialias=True, align_corners=False)


def _to_unit_float(array, what: str) -> torch.Tensor:
    """numpy / torch -> float tensor in [0, 1] (uint8 divided by 255)."""
    tensor = torch.from_numpy(np.array(array)) if not torch.is_tensor(array) else array
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    if not tensor.is_floating_point():
        raise ValueError(f"{what}: expected uint8 or float values, got {tensor.dtype}")
    tensor = tensor.detach().float().cpu()
    if tensor.numel() and (tensor.min() < -1e-3 or tensor.max() > 1 + 1e-3):
        raise ValueError(
            f"{what}: float values must be in [0, 1] (got [{tensor.min():.3g}, "
            f"{tensor.max():.3g}]); give uint8 for [0, 255]"
        )
    return tensor.clamp(0, 1)


def _channels_first(frames: torch.Tensor, what: str) -> torch.Tensor:
    """(..., H, W, C) or (..., C, H, W) with C in 1, 3, 4 -> (..., 3, H, W) RGB."""
    if frames.shape[-1] in (1, 3, 4) and frames.shape[-3] not in (1, 3, 4):
        frames = frames.movedim(-1, -3)
    elif frames.shape[-3] not in (1, 3, 4):
        raise ValueError(
            f"{what}: expected 1 (grey), 3 (RGB) or 4 (RGBA) channels, got shape "
            f"{tuple(frames.shape)}"
        )
    c = frames.shape[-3]
    if c == 4:  # flattened onto white, as a browser shows it; all transparent: nothing to show
        rgb, alpha = frames[..., :3, :, :], frames[..., 3:, :, :]
        transparent = check_alpha(what, alpha, f"the {what}")
        if transparent:
            logger.warning("%s: %.0f %% of its pixels are (partly) transparent; flattened onto "
                           "white", what, 100 * transparent)  # fmt: skip
        frames = rgb * alpha + (1 - alpha)
    elif c == 1:
        frames = frames.expand(*frames.shape[:-3], 3, *frames.shape[-2:])
    return frames


def _pil_to_array(image) -> np.ndarray:
    return image_array(image)  # (H, W, 3), or (H, W, 4) with transparency


def prepare_image(image, size: tuple[int, int]) -> torch.Tensor:
    """An image or a batch of images (see the module's docstring) -> (B, 3, *size) in [-1, 1].

    Raises:
        ValueError: an unreadable file, an unsupported layout or value range.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, (str, Path)):
        try:
            with Image.open(image) as opened:
                image = _pil_to_array(opened)
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"image {image}: not an image file PIL can read ({err})") from None
    if isinstance(image, Image.Image):
        image = _pil_to_array(image)
    if isinstance(image, (list, tuple)):
        return torch.cat([prepare_image(i, size) for i in image])
    frames = _to_unit_float(image, "image")
    if frames.ndim == 2:
        frames = frames[None]  # grey (H, W)
    if frames.ndim not in (3, 4):
        raise ValueError(
            f"image: expected (H, W, C), (C, H, W) or a batch of those, got shape "
            f"{tuple(frames.shape)}"
        )
    frames = _channels_first(frames, "image")
    if frames.ndim == 3:
        frames = frames[None]
    return _resize_crop(frames, size) * 2 - 1


def prepare_video(video, size: tuple[int, int], num_frames: int | None = None) -> torch.Tensor:
    """A video or a batch of videos (see the module's docstring) -> (B, 3, T, *size) in [-1, 1];
    a file is read with the project's reader (its first ``num_frames`` frames, else all).

    Raises:
        ValueError: an unsupported layout, a video shorter than ``num_frames``.
        VideoReadError: a file that cannot be decoded (its reason).
    """
    from ..data.video_io import read_video

    if isinstance(video, (str, Path)):
        video = read_video(video, num_frames=num_frames, start=0 if num_frames else None)
    if isinstance(video, (list, tuple)):
        if (
            video
            and not isinstance(video[0], (list, tuple, str, Path))
            and not (hasattr(video[0], "ndim") and video[0].ndim >= 4)
        ):  # a list of frames (e.g. PIL images) is one video
            video = np.stack([_pil_to_array(f) if hasattr(f, "convert") else f for f in video])
        else:
            return torch.cat([prepare_video(v, size, num_frames) for v in video])
    frames = _to_unit_float(video, "video")
    if frames.ndim not in (4, 5):
        raise ValueError(
            f"video: expected (T, H, W, C), (T, C, H, W) or a batch of those, got shape "
            f"{tuple(frames.shape)}"
        )
    frames = _channels_first(frames, "video")
    if frames.ndim == 4:
        frames = frames[None]
    b, t = frames.shape[:2]
    if num_frames is not None:
        if t < num_frames:
            raise ValueError(f"video: {t} frames, fewer than the {num_frames} needed")
        frames, t = frames[:, :num_frames], num_frames
    frames = _resize_crop(frames.flatten(0, 1), size).unflatten(0, (b, t))
    return frames.permute(0, 2, 1, 3, 4) * 2 - 1  # (B, 3, T, H, W)


def is_image(x) -> bool:
    """Whether an input is one image (an image file, PIL image, (H, W, C) array, (C, H, W)
    tensor) rather than a video."""
    if isinstance(x, (str, Path)):
        return Path(x).suffix.lower() in IMAGE_SUFFIXES
    if hasattr(x, "convert") and hasattr(x, "size"):  # PIL
        return True
    return hasattr(x, "ndim") and x.ndim in (2, 3)


def _broadcast(tensor: torch.Tensor, n: int, what: str) -> torch.Tensor:
    """A batch of 1 or n items -> n items."""
    if tensor.shape[0] == n:
        return tensor
    if tensor.shape[0] == 1:
        return tensor.expand(n, *tensor.shape[1:])
    raise ValueError(f"{tensor.shape[0]} {what} for {n} prompts / class labels; give 1 or {n}")


def _match(prompts, labels, n: int, count: int):
    """One condition for many inputs is repeated for each: (prompts, labels, n)."""
    if n == 1 and count > 1:
        prompts = prompts * count if prompts is not None else None
        labels = labels.expand(count) if labels is not None else None
        n = count
    return prompts, labels, n


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


# -- the pipeline's methods ----------------------------------------------------------------


class DecompositionMixin:
    """Image-to-video, motion transfer, editing and long videos for :class:`CMDPipeline`."""

    def encode_image(self, image) -> torch.Tensor:
        """An image (any accepted layout and size) -> content frame (B, C, H, W) in the
        autoencoder's space (the frame VAE's latents in latent mode)."""
        pixels = prepare_image(image, self.video_size()).to(self._execution_device)
        return self.codec.to_model_space(pixels.to(self._pixel_dtype)[:, :, None])[:, :, 0]

    def encode_video(self, video, num_frames: int | None = None):
        """A video (any accepted layout and size; a path is read from its first frame) ->
        (content frame, scaled motion latent), the spaces the diffusion models work in."""
        pixels = prepare_video(video, self.video_size(), num_frames).to(self._execution_device)
        return self.codec.encode(pixels.to(self._pixel_dtype))

    @property
    def _pixel_dtype(self) -> torch.dtype:
        """The dtype of the model that reads pixels: the frame VAE, else the autoencoder."""
        return self.vae.dtype if self.vae is not None else self.autoencoder.dtype

    def _conditions(self, prompt, class_labels, device):
        """(prompts, labels, n) of one call, as :meth:`__call__` reads them."""
        prompts = [prompt] if isinstance(prompt, str) else (list(prompt) if prompt else None)
        labels = None if class_labels is None else self._class_ids(class_labels, device)
        n = len(prompts) if prompts is not None else (len(labels) if labels is not None else 1)
        if labels is not None:
            labels = labels.expand(n)
        return prompts, labels, n

    def _refine_content(self, content, labels, text, strength, steps, guidance, rescale,
                        generator, progress):  # fmt: skip
        """SDEdit of content frames under the prompt / class: noise to ``strength``, denoise."""
        unet = self.content_model
        return sample_content(
            unet, self.content_scheduler, content.shape[0],
            labels if num_content_classes(unet) else None, text.content, text.content_null,
            guidance, steps, generator, content.device, progress, rescale,
            tuple(content.shape[-2:]), init=content.to(unet.dtype), strength=strength,
        )  # fmt: skip

    def _sample_motion(self, content, labels, text, num_frames, guidance, steps, generator,
                       progress, rescale, **start):  # fmt: skip
        motion_model = self.motion_model
        h, w = self.autoencoder.token_grid(*content.shape[-2:])
        return sample_motion(
            motion_model, self.motion_scheduler, content.to(motion_model.dtype), num_frames,
            h + w, labels if motion_model.config.num_classes else None, text.motion_pooled,
            guidance, steps, generator, progress, rescale, **start,
        )  # fmt: skip

    def _motion_video(self, content, labels, text, num_frames, guidance, steps, generator,
                      progress, rescale, overlap=None) -> torch.Tensor:  # fmt: skip
        """Sample the motion for ``content`` and decode: pixel video (B, 3, T, H, W) in
        [-1, 1]. Beyond the training length, clip by clip (see :meth:`__call__`)."""
        codec, clip_len = self.codec, int(self.config.num_frames)
        sample = dict(labels=labels, text=text, guidance=guidance, steps=steps,
                      generator=generator, progress=progress, rescale=rescale)  # fmt: skip
        if num_frames <= clip_len:  # the motion DiT makes whole patches along time
            patch = self.motion_model.config.motion_patch_size
            frames = min(clip_len, math.ceil(num_frames / patch) * patch)
            motion = self._sample_motion(content, num_frames=frames, **sample)
            return codec.decode(content.to(self.autoencoder.dtype), motion)[:, :, :num_frames]
        overlap = clip_len // 2 if overlap is None else int(overlap)
        ae, scale = self.autoencoder, codec.motion_scale
        content = content.to(ae.dtype)
        motion = self._sample_motion(content, num_frames=clip_len, **sample)
        clip = ae.decode(content, motion.to(ae.dtype) / scale)  # model space (B, C, T, H, W)
        clips, length = [codec.to_pixels(clip)], clip_len
        mask = torch.zeros(1, 1, clip_len, 1, dtype=torch.bool, device=content.device)
        mask[:, :, :overlap] = True
        while length < num_frames:
            # The next clip starts with the last `overlap` frames; its content frame and their
            # motion come from encoding them, held on the last frame to the clip's length. They
            # are taken from the pixels (in latent mode: encoded again by the frame VAE), which
            # keeps each clip's errors from compounding in latent space.
            tail = codec.to_model_space(clips[-1][:, :, -overlap:].to(clip.dtype))
            held = tail[:, :, -1:].expand(-1, -1, clip_len - overlap, -1, -1)
            content, known = ae.encode(torch.cat([tail, held], dim=2))
            motion = self._sample_motion(
                content, num_frames=clip_len, known=known * scale, known_mask=mask, **sample
            )
            clip = ae.decode(content, motion.to(ae.dtype) / scale)
            clips.append(codec.to_pixels(clip))
            length += clip_len - overlap
        return crossfade_clips(clips, overlap)[:, :, :num_frames]

    def _finish(self, video, content, output_type, return_dict):
        from .cmd import CMDPipelineOutput, _convert

        codec = self.codec
        video = ((video.float().clamp(-1, 1) + 1) / 2).cpu()
        still = (codec.content_to_pixels(content.to(self.autoencoder.dtype)).float() + 1) / 2
        frames = _convert(video.permute(0, 2, 1, 3, 4), output_type)  # (B, T, 3, H, W)
        stills = _convert(still.clamp(0, 1).cpu()[:, None], output_type)
        stills = [s[0] for s in stills] if output_type == "pil" else stills[:, 0]
        self.maybe_free_model_hooks()
        if not return_dict:
            return frames, stills
        return CMDPipelineOutput(frames=frames, content_frames=stills)

    @torch.no_grad()
    @uses_cpu_threads
    def image_to_video(
        self,
        image,
        prompt: str | list[str] | None = None,
        class_labels=None,
        strength: float = 0.0,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        content_guidance_scale: float | None = None,
        motion_guidance_scale: float | None = None,
        guidance_rescale: float | None = None,
        num_frames: int | None = None,
        generator: torch.Generator | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        overlap: int | None = None,
        num_videos_per_prompt: int = 1,
    ):
        """Animate an image: it becomes the content frame and only the motion is sampled, guided
        by it and by the prompt / class.

        Args:
            image: one image or a batch (a path, PIL, numpy or torch; any size: center-cropped to
                the model's aspect and resized); one per prompt, or one for all.
            strength: in [0, 1]; above 0 the content model first re-denoises the image from that
                noise level under the prompt (SDEdit), for images unlike the training data
                (0: the image as it is; 1: a new content frame).
            num_videos_per_prompt: videos per image and prompt (each its own motion; with
                ``strength`` > 0 its own content frame too), in order image by image.
            Other arguments as in :meth:`__call__` (``num_frames`` beyond the training length:
                clip by clip, with ``overlap``).

        Returns:
            :class:`CMDPipelineOutput`: the videos and the content frames they were made from.
        """
        self.check_inputs(
            prompt, class_labels, num_inference_steps, guidance_scale, content_guidance_scale,
            motion_guidance_scale, guidance_rescale, num_videos_per_prompt, num_frames,
            output_type, overlap=overlap, strength=strength, image=image,
        )  # fmt: skip
        device = self._execution_device
        prompts, labels, n = self._conditions(prompt, class_labels, device)
        content = self.encode_image(image)
        prompts, labels, n = _match(prompts, labels, n, content.shape[0])
        content = _broadcast(content, n, "images")
        if num_videos_per_prompt > 1:  # as __call__: each prompt's videos next to each other
            k = num_videos_per_prompt
            content = content.repeat_interleave(k, dim=0)
            prompts = [p for p in prompts for _ in range(k)] if prompts is not None else None
            labels = labels.repeat_interleave(k) if labels is not None else None
        steps = self.default_steps(num_inference_steps)
        s_content, s_motion = self.guidance_scales(
            guidance_scale, content_guidance_scale, motion_guidance_scale
        )
        rescale = self.default_rescale(guidance_rescale)
        progress = not getattr(self, "_progress_bar_config", {}).get("disable", False)
        text = self.encode_prompt(prompts, device)
        if strength > 0:
            content = self._refine_content(content, labels, text, strength, steps, s_content,
                                           rescale, generator, progress)  # fmt: skip
        video = self._motion_video(content, labels, text, num_frames or self.config.num_frames,
                                   s_motion, steps, generator, progress, rescale, overlap)  # fmt: skip
        return self._finish(video, content, output_type, return_dict)

    @torch.no_grad()
    @uses_cpu_threads
    def transfer_motion(
        self,
        content,
        motion,
        num_frames: int | None = None,
        output_type: str = "np",
        return_dict: bool = True,
    ):
        """decode(content of A, motion of B): ``content``'s appearance moving as ``motion`` does.

        Args:
            content: a video (its content frame is taken) or an image (it is the content frame).
            motion: a video (its first ``num_frames`` frames; default the training length).
        """
        self.check_inputs(num_frames=num_frames, output_type=output_type, content=content,
                          motion=motion)  # fmt: skip
        num_frames = num_frames or int(self.config.num_frames)
        if is_image(content):
            content_frame = self.encode_image(content)
        else:
            content_frame = self.encode_video(content, num_frames)[0]
        motion_latent = self.encode_video(motion, num_frames)[1]
        n = max(content_frame.shape[0], motion_latent.shape[0])
        content_frame = _broadcast(content_frame, n, "content inputs")
        motion_latent = _broadcast(motion_latent, n, "motion videos")
        video = self.codec.decode(content_frame, motion_latent.to(content_frame.dtype))
        return self._finish(video, content_frame, output_type, return_dict)

    @torch.no_grad()
    @uses_cpu_threads
    def edit_video(
        self,
        video,
        prompt: str | list[str] | None = None,
        class_labels=None,
        strength: float = 0.6,
        edit: str = "content",
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        content_guidance_scale: float | None = None,
        motion_guidance_scale: float | None = None,
        guidance_rescale: float | None = None,
        generator: torch.Generator | None = None,
        output_type: str = "np",
        return_dict: bool = True,
    ):
        """Edit a video under a new prompt / class through its decomposition.

        Args:
            video: one video or a batch (first ``num_frames`` of the training length are used).
            edit: "content": re-denoise the content frame from noise level ``strength`` under
                the prompt (recolour, another shape) and keep the video's motion; "motion": keep
                the content frame and resample the motion from level ``strength`` (1: new
                motion) guided by it and the prompt; "both".
            strength: in [0, 1], how far from the original each edited part may go.
        """
        self.check_inputs(
            prompt, class_labels, num_inference_steps, guidance_scale, content_guidance_scale,
            motion_guidance_scale, guidance_rescale, 1, None, output_type, strength=strength,
            edit=edit, video=video,
        )  # fmt: skip
        device = self._execution_device
        prompts, labels, n = self._conditions(prompt, class_labels, device)
        content, motion = self.encode_video(video, int(self.config.num_frames))
        prompts, labels, n = _match(prompts, labels, n, content.shape[0])
        content, motion = _broadcast(content, n, "videos"), _broadcast(motion, n, "videos")
        steps = self.default_steps(num_inference_steps)
        s_content, s_motion = self.guidance_scales(
            guidance_scale, content_guidance_scale, motion_guidance_scale
        )
        rescale = self.default_rescale(guidance_rescale)
        progress = not getattr(self, "_progress_bar_config", {}).get("disable", False)
        text = self.encode_prompt(prompts, device)
        if edit in ("content", "both"):
            content = self._refine_content(content, labels, text, strength, steps, s_content,
                                           rescale, generator, progress)  # fmt: skip
        if edit in ("motion", "both"):
            motion = self._sample_motion(
                content, labels, text, motion.shape[2], s_motion, steps, generator, progress,
                rescale, init=motion, strength=strength,
            )  # fmt: skip
        out = self.codec.decode(content.to(self.autoencoder.dtype), motion)
        return self._finish(out, content, output_type, return_dict)

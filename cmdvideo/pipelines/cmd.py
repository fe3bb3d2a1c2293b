"""CMDPipeline: prompt / class label -> content frame (image diffusion) -> motion latent (motion
DiT guided by the content frame) -> video (CMD decoder). A diffusers ``DiffusionPipeline``, so
``save_pretrained`` / ``from_pretrained`` / ``.to(device)`` / scheduler swapping work as usual.

Folder layout (``save_pretrained``)::

    PIPE/model_index.json
    PIPE/autoencoder/            CMDAutoencoder (with its motion_scaling_factor)
    PIPE/vae/                    AutoencoderKL, latent mode only
    PIPE/content_model/          UNet2DConditionModel
    PIPE/motion_model/           MotionDiT
    PIPE/text_encoder/ (+ tokenizer/)   text encoder of the content model (and of the motion
                                 model unless it has its own)
    PIPE/motion_text_encoder/    the motion model's own learned encoder (built-in encoder)
    PIPE/content_scheduler/, PIPE/motion_scheduler/   DDIM by default
"""

from __future__ import annotations

import torch

from ..hub import BUNDLED_PIPELINES  # noqa: F401
from ..runtime import uses_cpu_threads
from .adapters import CMDLoraLoaderMixin
from .arguments import OUTPUT_TYPES  # noqa: F401
from .components import CMDComponents, PromptEmbeddings  # noqa: F401
from .inputs import broadcast, is_image, match_conditions, pair_with_conditions, repeat_each
from .output import CMDPipelineOutput
from .sampling import (
    conditions,
    generate_content,
    motion_for,
    motion_video,
    refine_content,
)


class CMDPipeline(CMDComponents, CMDLoraLoaderMixin):
    """Generate videos with CMD (content-frame / motion-latent decomposition): from a prompt or
    class (:meth:`__call__`), from an image (:meth:`image_to_video`), by swapping two videos'
    motion (:meth:`transfer_motion`), by editing a video's content or motion
    (:meth:`edit_video`). Components and their settings: :class:`CMDComponents`; adapters
    taught by ``cmdvideo teach``: :class:`~cmdvideo.pipelines.adapters.CMDLoraLoaderMixin`.
    """

    @torch.no_grad()
    @uses_cpu_threads
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        class_labels: int | str | list | torch.Tensor | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        content_guidance_scale: float | None = None,
        motion_guidance_scale: float | None = None,
        guidance_rescale: float | None = None,
        num_videos_per_prompt: int = 1,
        num_frames: int | None = None,
        generator: torch.Generator | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        overlap: int | None = None,
    ) -> CMDPipelineOutput | tuple:
        """Generate videos: prompt / class -> content frame -> motion latent -> video.

        The decomposition's other uses: :meth:`image_to_video`, :meth:`transfer_motion`,
        :meth:`edit_video`.

        Args:
            prompt: one prompt or a list (one video each, times ``num_videos_per_prompt``).
            class_labels: an int / class name, or one per prompt (a list or tensor).
                With neither prompt nor class: unconditional samples.
            num_inference_steps: denoising steps of each stage (default: the pipeline's config,
                ``num_inference_steps`` in model_index.json; 50 when it has none).
            guidance_scale: classifier-free guidance scale of both stages (1 = no guidance);
                ``content_guidance_scale`` / ``motion_guidance_scale`` override per stage. By
                default each stage uses the scale in the pipeline's config (model_index.json).
            guidance_rescale: φ in [0, 1] of CFG rescale (Lin et al. 2023) on both stages,
                which keeps colours at large scales (default: the config's; 0 = plain CFG).
            num_videos_per_prompt: videos per prompt / label.
            num_frames: video length (default: the training length). Longer videos are made
                clip by clip, each next clip's first ``overlap`` frames (default half a clip)
                the last ones of the clip before (motion inpainting), overlaps cross-faded.
            generator: a ``torch.Generator``; the same seed gives the same videos.
            output_type: "np", "pt" or "pil" (see :class:`CMDPipelineOutput`).

        Returns:
            :class:`CMDPipelineOutput`, or ``(frames, content_frames)`` with
            ``return_dict=False``.
        """
        # 0. check every argument before any model runs; resolve the settings once
        sampling = self.check_inputs(
            prompt=prompt,
            class_labels=class_labels,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            content_guidance_scale=content_guidance_scale,
            motion_guidance_scale=motion_guidance_scale,
            guidance_rescale=guidance_rescale,
            num_videos_per_prompt=num_videos_per_prompt,
            num_frames=num_frames,
            output_type=output_type,
            overlap=overlap,
            generator=generator,
        )
        device = self._execution_device
        prompts, labels, n = conditions(self, prompt, class_labels, device)
        k = num_videos_per_prompt
        prompts, labels = repeat_each(prompts, labels, k)
        # 1. encode the prompt (the content model's null text even without one)
        text = self.encode_prompt(prompts, device)
        # 2. content frame
        content = generate_content(
            self, batch=n * k, labels=labels, text=text, sampling=sampling, device=device
        )
        # 3. motion latent, guided by the content frame; 4. decode (clip by clip if longer)
        video = motion_video(
            self,
            content,
            labels=labels,
            text=text,
            sampling=sampling,
            num_frames=num_frames or self.config.num_frames,
            overlap=overlap,
        )
        return self._output(video, content, output_type, return_dict)

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
        # 0. check; settings
        sampling = self.check_inputs(
            prompt=prompt,
            class_labels=class_labels,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            content_guidance_scale=content_guidance_scale,
            motion_guidance_scale=motion_guidance_scale,
            guidance_rescale=guidance_rescale,
            num_videos_per_prompt=num_videos_per_prompt,
            num_frames=num_frames,
            output_type=output_type,
            overlap=overlap,
            image=image,
            strength=strength,
            generator=generator,
        )
        device = self._execution_device
        prompts, labels, n = conditions(self, prompt, class_labels, device)
        # 1. the image is the content frame: one for every prompt, or one for each
        content, prompts, labels = pair_with_conditions(
            self.encode_image(image), prompts, labels, n, "images", k=num_videos_per_prompt
        )  # as __call__: each prompt's videos next to each other
        # 2. encode the prompt; 3. refine the image under it (SDEdit) if asked
        text = self.encode_prompt(prompts, device)
        if strength > 0:
            content = refine_content(
                self, content, labels=labels, text=text, strength=strength, sampling=sampling
            )
        # 4. motion latent guided by it; 5. decode
        video = motion_video(
            self,
            content,
            labels=labels,
            text=text,
            sampling=sampling,
            num_frames=num_frames or self.config.num_frames,
            overlap=overlap,
        )
        return self._output(video, content, output_type, return_dict)

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
        # 0. check
        self.check_inputs(
            content=content, motion=motion, num_frames=num_frames, output_type=output_type
        )
        num_frames = num_frames or int(self.config.num_frames)
        # 1. A's content frame, B's motion latent
        if is_image(content):
            content_frame = self.encode_image(content)
        else:
            content_frame = self.encode_video(content, num_frames)[0]
        motion_latent = self.encode_video(motion, num_frames)[1]
        n = max(content_frame.shape[0], motion_latent.shape[0])
        content_frame = broadcast(content_frame, n, "content inputs")
        motion_latent = broadcast(motion_latent, n, "motion videos")
        # 2. decode them together
        video = self.codec.decode(content_frame, motion_latent.to(content_frame.dtype))
        return self._output(video, content_frame, output_type, return_dict)

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
        # 0. check; settings
        sampling = self.check_inputs(
            video=video,
            prompt=prompt,
            class_labels=class_labels,
            strength=strength,
            edit=edit,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            content_guidance_scale=content_guidance_scale,
            motion_guidance_scale=motion_guidance_scale,
            guidance_rescale=guidance_rescale,
            output_type=output_type,
            generator=generator,
        )
        device = self._execution_device
        prompts, labels, n = conditions(self, prompt, class_labels, device)
        # 1. the video's decomposition; 2. encode the prompt
        content, motion = self.encode_video(video, int(self.config.num_frames))
        prompts, labels, n = match_conditions(prompts, labels, n, content.shape[0])
        content, motion = broadcast(content, n, "videos"), broadcast(motion, n, "videos")
        text = self.encode_prompt(prompts, device)
        given = dict(labels=labels, text=text, strength=strength, sampling=sampling)
        # 3. re-denoise what is edited, from level `strength`; 4. decode
        if edit in ("content", "both"):
            content = refine_content(self, content, **given)
        if edit in ("motion", "both"):
            motion = motion_for(self, content, num_frames=motion.shape[2], init=motion, **given)
        out = self.codec.decode(content.to(self.autoencoder.dtype), motion)
        return self._output(out, content, output_type, return_dict)

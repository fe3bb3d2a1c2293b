"""What a :class:`cmdvideo.pipelines.cmd.CMDPipeline` is made of and accepts: its components
and their settings, the defaults a call takes from its config, the checks of every argument,
and the encodings of prompts, images and videos into the spaces the models work in; the
output in the layout asked for. `CMDPipeline` adds the generation on top.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import diffusers
import torch
from diffusers import DiffusionPipeline

from ..hub import load_pretrained, resolve_pipeline_path

# Imported here (not lazily) also because diffusers loads a pipeline's custom components only
# from modules that are already imported.
from ..models import autoencoder as _autoencoder  # noqa: F401
from ..models import motion_dit as _motion_dit  # noqa: F401
from ..models.codec import FrameVAE, VideoCodec
from ..models.content import uses_text
from ..models.text import TextEmbeddings, WordTextEncoder, encode_prompts
from ..runtime import AUTO, resolve_threads
from .arguments import PipelineSpec, check_arguments, class_ids
from .inputs import prepare_image, prepare_video
from .output import CMDPipelineOutput, to_output_type
from .samplers import SAMPLERS, SPACINGS
from .sampling import Sampling

logger = logging.getLogger(__name__)


@dataclass
class PromptEmbeddings:
    """What :meth:`CMDComponents.encode_prompt` returns: the content model's token states of the
    prompts and of the empty prompt (its null text), and the motion model's pooled prompt
    embeddings (B, D); each None where that model takes no text."""

    content: TextEmbeddings | None
    content_null: TextEmbeddings | None
    motion_pooled: torch.Tensor | None


class CMDComponents(DiffusionPipeline):
    """The components of a :class:`cmdvideo.pipelines.cmd.CMDPipeline` and what they accept.

    Args:
        autoencoder: :class:`cmdvideo.models.autoencoder.CMDAutoencoder`.
        content_model: ``UNet2DConditionModel`` over content frames.
        motion_model: :class:`cmdvideo.models.motion_dit.MotionDiT`.
        content_scheduler, motion_scheduler: any diffusers schedulers (DDIM by default).
        vae: ``AutoencoderKL`` of latent mode (None in pixel mode).
        text_encoder, tokenizer: CLIP text model + tokenizer, or the built-in
            ``WordTextEncoder`` (tokenizer None); None without text conditioning.
        motion_text_encoder: the motion model's own learned encoder, if it has one.
        class_names: names of the class labels (``class_labels`` may use them).
        num_frames: default video length (what the models were trained on).
        content_size: (H, W) of the content frames the models were trained on.
        training_data: what the models learned from, e.g. ``{"source": "moving-shapes",
            "world": "upright"}`` (evaluation renders real videos of the same world).
    """

    model_cpu_offload_seq = "text_encoder->content_model->motion_model->autoencoder"
    _optional_components = ["vae", "text_encoder", "tokenizer", "motion_text_encoder"]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """diffusers' ``from_pretrained`` (a folder or hub id), plus the short names of the
        pipelines bundled with the package: ``CMDPipeline.from_pretrained("moving-shapes-tiny")``.

        Offline unless asked: a hub id loads from the local Hugging Face cache; pass
        ``local_files_only=False`` to let diffusers download it."""
        allow_download = kwargs.get("local_files_only") is False
        path = resolve_pipeline_path(pretrained_model_name_or_path, allow_download)
        if isinstance(path, str) and not allow_download:
            kwargs.setdefault("local_files_only", True)
        return load_pretrained(super().from_pretrained, path, "pipeline", **kwargs)

    def set_sampler(self, name: str, timestep_spacing: str | None = None) -> CMDComponents:
        """Sample both stages with a named diffusers scheduler (``SAMPLERS``: ddim, dpm =
        DPM-Solver++, unipc, ddpm, euler), built from each stage's own schedule config.

        Args:
            timestep_spacing: diffusers' ``timestep_spacing`` ("leading", "trailing",
                "linspace"); None keeps the stage's. With few steps "trailing" starts at the
                last training timestep (Lin et al. 2024): the bundle's 8 DPM-Solver++ steps
                (experiments/fast-sampling).
        """

        if name not in SAMPLERS:
            raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, got {name!r}")
        if timestep_spacing not in (None, *SPACINGS):
            raise ValueError(
                f"timestep_spacing must be one of {SPACINGS}, got {timestep_spacing!r}"
            )
        cls = getattr(diffusers, SAMPLERS[name])
        spacing = {"timestep_spacing": timestep_spacing} if timestep_spacing else {}
        self.content_scheduler = cls.from_config(self.content_scheduler.config, **spacing)
        self.motion_scheduler = cls.from_config(self.motion_scheduler.config, **spacing)
        return self

    def compile(self, mode: str | None = None) -> CMDComponents:
        """``torch.compile`` the two denoisers, the models every sampling step runs (in place;
        the first call then compiles for a minute or more, later calls of the same shapes are
        faster). ``mode``: as ``torch.compile``'s (None, "reduce-overhead", "max-autotune").
        Measured on the bundle: experiments/fast-sampling."""
        for model in (self.content_model, self.motion_model):
            model.compile(mode=mode, dynamic=False)
        return self

    def sampler_name(self) -> str:
        """The name (``SAMPLERS``) of the sampler the pipeline's schedulers are: what it
        samples with when no sampler is asked for; else the scheduler's class name."""
        found = type(self.content_scheduler).__name__
        return next((name for name, cls in SAMPLERS.items() if cls == found), found)

    def set_threads(self, threads: int | str | None = AUTO) -> CMDComponents:
        """How many torch CPU threads each generating call (``__call__``, ``image_to_video``,
        ``transfer_motion``, ``edit_video``) runs with on a CPU, the number put back after it:

        - ``"auto"`` (the default): the command line's rule — the cores no other process keeps
          busy (``cmdvideo.runtime.default_threads``, read at most every 30 s) — unless you chose
          threads yourself (``torch.set_num_threads``, ``OMP_NUM_THREADS``), which are kept.
          Beside one busy process torch's one thread per core was several times slower
          (``results/python-api``, docs/efficiency.md#threads).
        - an integer: that many.
        - None: leave torch's setting alone.
        """
        if threads not in (AUTO, None):
            resolve_threads(threads)  # a bad number is refused now, not at the next call
        self.threads = threads
        return self

    def __init__(
        self,
        autoencoder,
        content_model,
        motion_model,
        content_scheduler,
        motion_scheduler,
        vae=None,
        text_encoder=None,
        tokenizer=None,
        motion_text_encoder=None,
        class_names: list[str] | None = None,
        num_frames: int = 16,
        content_guidance_scale: float = 4.0,
        motion_guidance_scale: float = 4.0,
        num_inference_steps: int = 50,
        guidance_rescale: float = 0.0,
        content_size: list[int] | None = None,
        training_data: dict | None = None,
    ):
        super().__init__()
        self.register_modules(
            autoencoder=autoencoder,
            content_model=content_model,
            motion_model=motion_model,
            content_scheduler=content_scheduler,
            motion_scheduler=motion_scheduler,
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            motion_text_encoder=motion_text_encoder,
        )
        # Default guidance of each stage and default denoising steps, chosen by measurement for
        # the trained models and kept in model_index.json (a call's arguments override them).
        self.register_to_config(
            class_names=list(class_names or []),
            num_frames=int(num_frames),
            content_guidance_scale=float(content_guidance_scale),
            motion_guidance_scale=float(motion_guidance_scale),
            num_inference_steps=int(num_inference_steps),
            guidance_rescale=float(guidance_rescale),
            content_size=list(content_size) if content_size else None,
            training_data=dict(training_data) if training_data else None,
        )
        self.threads: int | str | None = AUTO  # torch CPU threads of each call (set_threads)

    # -- what the models accept ------------------------------------------------------------

    @property
    def codec(self) -> VideoCodec:
        return VideoCodec(self.autoencoder, FrameVAE(self.vae) if self.vae is not None else None)

    def guidance_scales(
        self, guidance_scale=None, content_guidance_scale=None, motion_guidance_scale=None
    ) -> tuple[float, float]:
        """(content, motion) guidance: per-stage argument, else ``guidance_scale``, else the
        config's default."""
        content = content_guidance_scale if content_guidance_scale is not None else guidance_scale
        motion = motion_guidance_scale if motion_guidance_scale is not None else guidance_scale
        config = self.config
        return (
            float(content if content is not None else config.get("content_guidance_scale", 4.0)),
            float(motion if motion is not None else config.get("motion_guidance_scale", 4.0)),
        )

    def default_rescale(self, guidance_rescale: float | None = None) -> float:
        """CFG rescale φ of both stages: the argument, else the pipeline's config, else 0."""
        if guidance_rescale is not None:
            return float(guidance_rescale)
        return float(self.config.get("guidance_rescale", 0.0))

    def default_steps(self, num_inference_steps: int | None = None) -> int:
        """``num_inference_steps``, else the config's default (50 for pipelines without one)."""
        if num_inference_steps is not None:
            return int(num_inference_steps)
        default = self.config.get("num_inference_steps")
        return 50 if default is None else int(default)

    def content_size(self) -> tuple[int, int]:
        """(H, W) of the content frames (VAE latents in latent mode): the training data's
        (``content_size`` in the config), else the content model's ``sample_size``."""
        size = self.config.get("content_size") or self.content_model.config.sample_size
        return (size, size) if isinstance(size, int) else tuple(size)

    def video_size(self) -> tuple[int, int]:
        """(height, width) in pixels of the videos this pipeline generates."""
        h, w = self.content_size()
        f = FrameVAE(self.vae).downsample if self.vae is not None else 1
        return h * f, w * f

    @property
    def num_classes(self) -> int:
        return PipelineSpec.from_pipeline(self).num_classes

    @property
    def accepts_text(self) -> bool:
        return PipelineSpec.from_pipeline(self).accepts_text

    def _class_ids(self, class_labels, device=None) -> torch.Tensor:
        """Class labels (ints, names, or a tensor) -> (N,) long ids, checked."""
        ids = class_ids(class_labels, PipelineSpec.from_pipeline(self))
        return torch.tensor(ids, dtype=torch.long, device=device)

    def _text_encoders(self) -> list:
        """The text encoders the prompts go through: the content model's and the motion
        model's (its own learned one, else the shared one)."""
        found = []
        if uses_text(self.content_model):
            found.append(self.text_encoder)
        if self.motion_model.config.text_embed_dim:
            found.append(self.motion_text_encoder or self.text_encoder)
        return [e for i, e in enumerate(found) if e is not None and e not in found[:i]]

    def check_inputs(
        self,
        prompt=None,
        class_labels=None,
        num_inference_steps=None,
        guidance_scale=None,
        content_guidance_scale=None,
        motion_guidance_scale=None,
        guidance_rescale=None,
        num_videos_per_prompt=1,
        num_frames=None,
        output_type="np",
        overlap=None,
        generator=None,
        **more,
    ) -> Sampling:
        """Step 0 of every entry point, given its values by name: refuse every bad argument
        before any model runs (the bounds of :data:`cmdvideo.pipelines.arguments.ARGUMENTS`,
        against what this pipeline accepts), then resolve the call's sampling settings once
        from them and the pipeline's defaults. ``more``: other arguments of the table
        (``strength``, ``edit``, ``image``, ...).

        Returns:
            :class:`Sampling`: the steps, guidance and rescale the call samples with.

        Raises:
            InvalidArgument: a ``ValueError`` naming the argument (``err.arg``), the value and
                what is accepted. Also warns, once per call, about prompt words outside a
                learned text encoder's vocabulary.
        """
        check_arguments(
            PipelineSpec.from_pipeline(self),
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
            **more,
        )
        if prompt is not None:
            prompts = [prompt] if isinstance(prompt, str) else prompt
            unknown = sorted(
                {
                    w
                    for e in self._text_encoders()
                    if isinstance(e, WordTextEncoder)
                    for w in e.report_unknown_words(prompts)
                }
            )
            if unknown:
                logger.warning(
                    "words not in the model's vocabulary (read as 'unknown'): %s",
                    ", ".join(unknown),
                )
        return Sampling.of(
            self,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            content_guidance_scale=content_guidance_scale,
            motion_guidance_scale=motion_guidance_scale,
            guidance_rescale=guidance_rescale,
            generator=generator,
        )

    def encode_prompt(self, prompt: str | list[str] | None, device=None) -> PromptEmbeddings:
        """Embeddings of ``prompt`` for both stages (see :class:`PromptEmbeddings`); with no
        prompt only the content model's null text (what unconditional sampling feeds it)."""
        prompts = [prompt] if isinstance(prompt, str) else (list(prompt) if prompt else None)
        device = device or self._execution_device
        content = null = pooled = None
        if uses_text(self.content_model):  # the empty prompt: null text of CFG
            null = encode_prompts(self.text_encoder, self.tokenizer, [""], device)
            if prompts is not None:
                content = encode_prompts(self.text_encoder, self.tokenizer, prompts, device)
        if prompts is not None and self.motion_model.config.text_embed_dim:
            encoder = self.motion_text_encoder or self.text_encoder
            pooled = encode_prompts(encoder, self.tokenizer, prompts, device).pooled
        return PromptEmbeddings(content=content, content_null=null, motion_pooled=pooled)

    # -- inputs and outputs ----------------------------------------------------------------

    @property
    def _pixel_dtype(self) -> torch.dtype:
        """The dtype of the model that reads pixels: the frame VAE, else the autoencoder."""
        return self.vae.dtype if self.vae is not None else self.autoencoder.dtype

    def encode_image(self, image) -> torch.Tensor:
        """An image (any accepted layout and size, see :mod:`.inputs`) -> content frame
        (B, C, H, W) in the autoencoder's space (the frame VAE's latents in latent mode)."""
        pixels = prepare_image(image, self.video_size()).to(self._execution_device)
        return self.codec.to_model_space(pixels.to(self._pixel_dtype)[:, :, None])[:, :, 0]

    def encode_video(self, video, num_frames: int | None = None):
        """A video (any accepted layout and size; a path is read from its first frame) ->
        (content frame, scaled motion latent), the spaces the diffusion models work in."""
        pixels = prepare_video(video, self.video_size(), num_frames).to(self._execution_device)
        return self.codec.encode(pixels.to(self._pixel_dtype))

    def _output(self, video, content, output_type, return_dict):
        """Videos (B, 3, T, H, W) in [-1, 1] and their content frames -> the output."""
        video = ((video.float().clamp(-1, 1) + 1) / 2).cpu()
        still = (self.codec.content_to_pixels(content.to(self.autoencoder.dtype)).float() + 1) / 2
        frames = to_output_type(video.permute(0, 2, 1, 3, 4), output_type)  # (B, T, 3, H, W)
        stills = to_output_type(still.clamp(0, 1).cpu()[:, None], output_type)
        stills = [s[0] for s in stills] if output_type == "pil" else stills[:, 0]
        self.maybe_free_model_hooks()
        if not return_dict:
            return frames, stills
        return CMDPipelineOutput(frames=frames, content_frames=stills)

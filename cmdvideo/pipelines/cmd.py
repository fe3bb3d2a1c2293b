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

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

# Imported here (not lazily) also because diffusers loads a pipeline's custom components only
# from modules that are already imported.
from ..models import autoencoder as _autoencoder  # noqa: F401
from ..models import motion_dit as _motion_dit  # noqa: F401
from ..models.codec import FrameVAE, VideoCodec
from ..models.content import num_content_classes, uses_text
from ..models.text import encode_prompts
from .denoise import sample_content, sample_motion

logger = logging.getLogger(__name__)

OUTPUT_TYPES = ("np", "pt", "pil")

# Pipelines shipped inside the package, loadable by short name wherever a folder is accepted.
ASSETS = Path(__file__).resolve().parent.parent / "assets"
BUNDLED_PIPELINES = {"moving-shapes-tiny": ASSETS / "moving-shapes-tiny"}


def resolve_pipeline_path(name_or_path: str | Path) -> str | Path:
    """A bundled pipeline's folder for its short name; anything else unchanged."""
    if str(name_or_path) in BUNDLED_PIPELINES:
        path = BUNDLED_PIPELINES[str(name_or_path)]
        if not (path / "model_index.json").is_file():
            raise FileNotFoundError(
                f"the bundled pipeline {name_or_path!r} is missing from {path}: reinstall "
                "cmdvideo, or retrain it with `bash scripts/train_default.sh`"
            )
        return path
    return name_or_path


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


class CMDPipeline(DiffusionPipeline):
    """Generate videos with CMD (content-frame / motion-latent decomposition).

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
    """

    model_cpu_offload_seq = "text_encoder->content_model->motion_model->autoencoder"
    _optional_components = ["vae", "text_encoder", "tokenizer", "motion_text_encoder"]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """diffusers' ``from_pretrained`` (a folder or hub id), plus the short names of the
        pipelines bundled with the package: ``CMDPipeline.from_pretrained("moving-shapes-tiny")``."""
        path = resolve_pipeline_path(pretrained_model_name_or_path)
        return super().from_pretrained(path, **kwargs)

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
        )

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

    def video_size(self) -> tuple[int, int]:
        """(height, width) in pixels of the videos this pipeline generates."""
        size = self.content_model.config.sample_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        f = FrameVAE(self.vae).downsample if self.vae is not None else 1
        return h * f, w * f

    @property
    def num_classes(self) -> int:
        return max(num_content_classes(self.content_model), self.motion_model.config.num_classes)

    @property
    def accepts_text(self) -> bool:
        return uses_text(self.content_model) or self.motion_model.config.text_embed_dim > 0

    def _class_ids(self, class_labels, device) -> torch.Tensor:
        names = list(self.config.class_names)
        if torch.is_tensor(class_labels):
            ids = class_labels.flatten().tolist()
        else:
            ids = class_labels if isinstance(class_labels, (list, tuple)) else [class_labels]
        out = []
        for label in ids:
            if isinstance(label, str):
                if label not in names:
                    raise ValueError(f"unknown class {label!r}; classes: {names}")
                label = names.index(label)
            label = int(label)
            if not 0 <= label < self.num_classes:
                raise ValueError(f"class label {label} out of range [0, {self.num_classes})")
            out.append(label)
        return torch.tensor(out, dtype=torch.long, device=device)

    def _embed(self, encoder, prompts, device):
        return encode_prompts(encoder, self.tokenizer, prompts, device)

    # -- generation ------------------------------------------------------------------------

    @torch.no_grad()
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
    ) -> CMDPipelineOutput | tuple:
        """Generate videos.

        1. content frame: the content model, DDIM (``content_scheduler``), CFG;
        2. motion latent: the motion DiT guided by that content frame, DDIM, CFG;
        3. decode both with the CMD decoder (and the VAE in latent mode).

        Args:
            prompt: one prompt or a list (one video each, times ``num_videos_per_prompt``).
            class_labels: an int / class name, or one per prompt (a list or tensor).
                With neither prompt nor class: unconditional samples.
            num_inference_steps: denoising steps of each stage (default: the pipeline's config,
                ``num_inference_steps`` in model_index.json; 50 when it has none).
            guidance_scale: classifier-free guidance scale of both stages (1 = no guidance);
                ``content_guidance_scale`` / ``motion_guidance_scale`` override per stage. By
                default each stage uses the scale in the pipeline's config (model_index.json).
            guidance_rescale: φ in [0, 1] of CFG rescale (Lin et al. 2023) on both stages: pulls
                the guided prediction's standard deviation back to the conditional one's, so
                large scales keep colours (default: the config's, 0 = plain CFG).
            num_videos_per_prompt: videos per prompt / label.
            num_frames: video length (default: the training length).
            generator: a ``torch.Generator``; the same seed gives the same videos.
            output_type: "np", "pt" or "pil" (see :class:`CMDPipelineOutput`).

        Returns:
            :class:`CMDPipelineOutput`, or ``(frames, content_frames)`` with
            ``return_dict=False``.
        """
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if num_videos_per_prompt < 1:
            raise ValueError("num_videos_per_prompt must be >= 1")
        device = self._execution_device
        prompts = [prompt] if isinstance(prompt, str) else (list(prompt) if prompt else None)
        labels = None if class_labels is None else self._class_ids(class_labels, device)
        if prompts is not None and not self.accepts_text:
            raise ValueError("this pipeline has no text conditioning; pass class_labels")
        if labels is not None and self.num_classes == 0:
            raise ValueError("this pipeline has no class conditioning; pass a prompt")
        if prompts is not None and labels is not None and len(labels) not in (1, len(prompts)):
            raise ValueError(
                f"{len(prompts)} prompts but {len(labels)} class labels; give one label or one "
                "per prompt"
            )
        n = len(prompts) if prompts is not None else (len(labels) if labels is not None else 1)
        if labels is not None:
            labels = labels.expand(n).repeat_interleave(num_videos_per_prompt)
        if prompts is not None:
            prompts = [p for p in prompts for _ in range(num_videos_per_prompt)]
        batch = n * num_videos_per_prompt
        num_inference_steps = self.default_steps(num_inference_steps)
        num_frames = num_frames or self.config.num_frames
        progress = not getattr(self, "_progress_bar_config", {}).get("disable", False)
        s_content, s_motion = self.guidance_scales(
            guidance_scale, content_guidance_scale, motion_guidance_scale
        )
        rescale = self.default_rescale(guidance_rescale)

        # 1. content frame
        unet = self.content_model
        text = null = None
        if uses_text(unet):  # the empty prompt: null text of CFG, or the only text
            null = self._embed(self.text_encoder, [""], device)
            if prompts is not None:
                text = self._embed(self.text_encoder, prompts, device)
        content = sample_content(
            unet, self.content_scheduler, batch,
            labels if num_content_classes(unet) else None, text, null,
            s_content, num_inference_steps, generator, device, progress, rescale,
        )  # fmt: skip

        # 2. motion latent, guided by the generated content frame
        motion_model = self.motion_model
        pooled = None
        if prompts is not None and motion_model.config.text_embed_dim:
            encoder = self.motion_text_encoder
            encoder = self.text_encoder if encoder is None else encoder
            pooled = self._embed(encoder, prompts, device).pooled
        h, w = self.autoencoder.token_grid(*content.shape[-2:])
        motion = sample_motion(
            motion_model, self.motion_scheduler, content.to(motion_model.dtype), num_frames,
            h + w, labels if motion_model.config.num_classes else None, pooled, s_motion,
            num_inference_steps, generator, progress, rescale,
        )  # fmt: skip

        # 3. decode
        codec = self.codec
        video = codec.decode(content.to(self.autoencoder.dtype), motion)  # (B, 3, T, H, W)
        video = ((video.float().clamp(-1, 1) + 1) / 2).cpu()
        still = (codec.content_to_pixels(content.to(self.autoencoder.dtype)).float() + 1) / 2
        still = still.clamp(0, 1).cpu()  # (B, 3, H, W)
        frames = _convert(video.permute(0, 2, 1, 3, 4), output_type)  # (B, T, 3, H, W)
        stills = _convert(still[:, None], output_type)
        stills = [s[0] for s in stills] if output_type == "pil" else stills[:, 0]
        self.maybe_free_model_hooks()
        if not return_dict:
            return frames, stills
        return CMDPipelineOutput(frames=frames, content_frames=stills)


def _convert(video: torch.Tensor, output_type: str):
    """(B, T, 3, H, W) in [0, 1] -> the requested output type."""
    if output_type == "pt":
        return video
    array = video.permute(0, 1, 3, 4, 2).numpy()  # (B, T, H, W, 3)
    if output_type == "np":
        return array
    from PIL import Image

    return [[Image.fromarray((f * 255).round().astype(np.uint8)) for f in v] for v in array]


def _classes_of(run: Path) -> list[str] | None:
    """Class names a training run saved (``classes.json``); for moving-shapes runs without
    one, the dataset's own names."""
    path = run / "classes.json"
    if path.is_file():
        return json.loads(path.read_text())
    from ..config import load_config

    config = load_config(run / "config.yaml")
    conditions = config.content.condition + config.motion.condition
    if config.data.source == "moving-shapes" and "class" in conditions:
        from ..data.moving_shapes import MOTIONS

        return list(MOTIONS)
    return None


def assemble_pipeline(autoencoder: str | Path, content: str | Path, motion: str | Path):
    """One :class:`CMDPipeline` from the three training output folders (``cmdvideo train
    autoencoder|content|motion --out``); training schedulers become DDIM samplers."""
    from diffusers import DDIMScheduler, DDPMScheduler

    from ..models.content import load_content_model
    from ..models.motion_dit import MotionDiT
    from ..models.text import WordTextEncoder, load_text_encoder

    content, motion = Path(content), Path(motion)
    for run, name in ((content, "content"), (motion, "motion")):
        if not (run / name / "config.json").is_file():
            raise FileNotFoundError(
                f"{run}/{name}/config.json not found: give the --out folder of `cmdvideo train {name}`"
            )
    codec = VideoCodec.from_pretrained(autoencoder)
    if codec.autoencoder.config.motion_scaling_factor is None:
        raise ValueError("the autoencoder is not calibrated: run `cmdvideo calibrate` first")
    text_encoder = tokenizer = motion_text_encoder = None
    if (content / "text_encoder").is_dir():
        text_encoder, tokenizer = load_text_encoder(content)
    if (motion / "text_encoder").is_dir():
        encoder, motion_tokenizer = load_text_encoder(motion)
        if isinstance(encoder, WordTextEncoder):
            motion_text_encoder = encoder  # learned with the motion model: its own
        elif text_encoder is None:
            text_encoder, tokenizer = encoder, motion_tokenizer
    classes = [c for c in (_classes_of(content), _classes_of(motion)) if c]
    if len(classes) == 2 and classes[0] != classes[1]:
        raise ValueError("the content and motion runs were trained on different classes")
    from ..config import load_config

    num_frames = load_config(motion / "config.yaml").data.num_frames

    def ddim(run, name):
        return DDIMScheduler.from_config(DDPMScheduler.from_pretrained(run / name).config)

    return CMDPipeline(
        autoencoder=codec.autoencoder,
        content_model=load_content_model(content / "content"),
        motion_model=MotionDiT.from_pretrained(motion / "motion"),
        content_scheduler=ddim(content, "content_scheduler"),
        motion_scheduler=ddim(motion, "motion_scheduler"),
        vae=codec.frame_vae.vae if codec.latent_mode else None,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        motion_text_encoder=motion_text_encoder,
        class_names=classes[0] if classes else None,
        num_frames=num_frames,
    )

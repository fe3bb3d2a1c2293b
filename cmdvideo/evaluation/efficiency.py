"""What CMD saves against full-video diffusion (paper §4.3, Table 4): ``cmdvideo bench``.

Every comparison is for the same output video and the same number of sampling steps.

1. FLOPs per video at paper scale (512×1024, 16 frames, SD VAE latents 4×16×64×128): CMD runs
   its content model and its motion model once per step and its decoder once; a full-video
   baseline runs its denoiser over the whole video once per step. The models are built at full
   size on the ``meta`` device and counted with ``torch.utils.flop_counter.FlopCounterMode``,
   so no memory is spent and no weights are needed.
2. Wall time and peak memory per video at tiny scale (the tiny config: 3×16×32×32 pixels),
   CMD against the conventional video model made from CMD's own content UNet: the same widths
   plus temporal layers (``UNet3DConditionModel``).
3. Training cost per step of each CMD stage against that baseline's, same batch size.

Conventions (said once here, repeated in the report):

- ``FlopCounterMode`` counts 2 FLOPs per multiply-add and only matrix products and
  convolutions (no norms, activations, softmax). Attention is counted through its products
  (QKᵀ and AV): SDPA is run on its math backend while counting, so the count does not depend
  on which fused kernel a device would pick. We also report multiply-adds without the attention
  products, the convention the paper's Table 4 matches (see :data:`PAPER_TFLOPS`).
- Classifier-free guidance is not included: figures are per denoiser evaluation × steps.
  With CFG every denoiser term doubles (``*_cfg`` entries); decoders do not.
- Text encoders run once per video and are not included (CLIP-L for CMD, OpenCLIP-H for
  ModelScope, T5-XXL for Latte: different, and not what the comparison is about).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..config import Config

logger = logging.getLogger(__name__)

SCALES = ("paper", "tiny", "both")
METHODS = ("cmd", "unet3d", "video_dit")
LABELS = {
    "cmd": "CMD",
    "unet3d": "3-D UNet (ModelScope architecture)",
    "video_dit": "full-video DiT (Latte-XL/2)",
}
TINY_LABELS = {
    "cmd": "CMD (tiny)",
    "unet3d": "3-D UNet: tiny content UNet widths + temporal layers",
    "video_dit": "full-video DiT: tiny motion DiT size",
}

# Paper, Table 4: TFLOPs per video (512x1024, 16 frames, 50 DDIM steps). The ModelScope figure
# matches our count of multiply-adds without the attention products (937.5 T), i.e. the
# convention of counters that count convolutions and linear layers as one FLOP per
# multiply-add and do not see fused attention kernels (fvcore, thop).
PAPER_TFLOPS = {"cmd": 46.8, "unet3d": 939.0, "lvdm": 625.6}
PAPER_CONFIG = "webvid-latent-512x1024"

# Text states each paper-scale model reads (width, tokens): what a forward pass costs depends on
# them (cross-attention), not their values.
CLIP_L = (768, 77)  # SD 1.5's CLIP ViT-L/14: content UNet states, motion DiT pooled vector
OPENCLIP_H = (1024, 77)  # ModelScope's OpenCLIP ViT-H/14
T5_XXL = (4096, 120)  # Latte-1's T5 v1.1 XXL, 120 tokens

_ATTENTION_OPS = frozenset(
    {
        "bmm",
        "baddbmm",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_cudnn_attention",
        "_flash_attention_forward",
        "_efficient_attention_forward",
        "flex_attention",
    }
)


# -- counting ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of some computation as ``FlopCounterMode`` counts them.

    Attributes:
        flops: 2 per multiply-add, every matrix product and convolution.
        attention_flops: the part of ``flops`` in attention products (QKᵀ, AV): batched
            matrix products between activations (every linear layer is an ``mm``/``addmm``).
    """

    flops: int = 0
    attention_flops: int = 0

    def __add__(self, other: FlopCount) -> FlopCount:
        return FlopCount(self.flops + other.flops, self.attention_flops + other.attention_flops)

    def __mul__(self, n: int) -> FlopCount:
        return FlopCount(self.flops * n, self.attention_flops * n)

    __rmul__ = __mul__

    @property
    def macs(self) -> float:
        return self.flops / 2

    @property
    def macs_without_attention(self) -> float:
        return (self.flops - self.attention_flops) / 2


def count_flops(fn: Callable[[], object]) -> FlopCount:
    """Run ``fn()`` (no gradients) under ``FlopCounterMode``; works on the meta device.

    SDPA is forced onto its math backend, which decomposes attention into counted batched
    matrix products on every device (a CPU's fused kernel would otherwise go uncounted).
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn()
    per_op = counter.get_flop_counts().get("Global", {})
    attention = sum(n for op, n in per_op.items() if op.__name__ in _ATTENTION_OPS)
    return FlopCount(int(counter.get_total_flops()), int(attention))


@dataclass(frozen=True)
class CostTerm:
    """One model call of a sampling run.

    Attributes:
        name: what runs, e.g. "content model".
        per_call: its FLOPs for one video.
        per_step: True for a denoiser (runs every sampling step; doubled by CFG), False for a
            part that runs once per video (a decoder).
        params: its parameter count.
    """

    name: str
    per_call: FlopCount
    per_step: bool
    params: int = 0

    def calls(self, steps: int, guidance: bool = False) -> int:
        return steps * (2 if guidance else 1) if self.per_step else 1


def flops_per_video(terms: list[CostTerm], steps: int, guidance: bool = False) -> FlopCount:
    """Σ per-call FLOPs × calls: denoisers ``steps`` times (twice with CFG), the rest once."""
    total = FlopCount()
    for term in terms:
        total = total + term.per_call * term.calls(steps, guidance)
    return total


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _spatial_size(model) -> tuple[int, int]:
    size = model.config.sample_size
    return (size, size) if isinstance(size, int) else tuple(size)


def cmd_cost_terms(
    content_model,
    motion_model,
    autoencoder,
    num_frames: int,
    text=None,
    null_text=None,
    pooled: torch.Tensor | None = None,
) -> list[CostTerm]:
    """FLOPs of what :class:`cmdvideo.pipelines.cmd.CMDPipeline` runs for one video, called as
    the pipeline calls it (``content_prediction``, ``MotionDiT.guided``, the CMD decoder), at
    guidance scale 1. Inputs are made on the autoencoder's device (``meta`` costs nothing).

    Class labels are left out (the null class is used): an embedding lookup costs no FLOPs,
    and a label check cannot run on the meta device.

    Args:
        content_model, motion_model, autoencoder: the three CMD models.
        num_frames: T of the video.
        text, null_text: :class:`cmdvideo.models.text.TextEmbeddings` of one prompt and of the
            empty prompt, for a text-conditioned content model.
        pooled: (1, D) pooled prompt embedding for a text-conditioned motion model.
    """
    from ..models.content import content_prediction

    device = autoencoder.device
    h, w = _spatial_size(content_model)
    with torch.device(device):  # tensors the models make on the fly land there too
        content = torch.randn(1, autoencoder.config.in_channels, h, w)  # (1, C, H, W)
        motion = torch.randn(1, *autoencoder.motion_latent_shape(num_frames, h, w))
        t = torch.tensor([999])
        content_flops = count_flops(
            lambda: content_prediction(content_model, content, t, None, text, null_text)
        )
        motion_flops = count_flops(lambda: motion_model.guided(motion, t, content, None, pooled))
        decoder_flops = count_flops(lambda: autoencoder.decode(content, motion))
    return [
        CostTerm("content model", content_flops, per_step=True, params=_params(content_model)),
        CostTerm("motion model", motion_flops, per_step=True, params=_params(motion_model)),
        CostTerm("CMD decoder", decoder_flops, per_step=False, params=_decoder_params(autoencoder)),
    ]


def _decoder_params(autoencoder) -> int:
    """Parameters the CMD decoder uses (§3.1: content/motion embeddings, transformer, output)."""
    parts = ("content_embed", "motion_embed_x", "motion_embed_y", "decoder", "output_proj")
    return sum(_params(getattr(autoencoder, name)) for name in parts)


def full_video_cost_terms(
    name: str, model, channels: int, num_frames: int, size: tuple[int, int], text_states
) -> list[CostTerm]:
    """FLOPs of a full-video denoiser (``UNet3DConditionModel`` or ``LatteTransformer3DModel``)
    on a (1, C, T, H, W) video, text states (1, L, D): one call per sampling step."""
    with torch.device(model.device):
        video = torch.randn(1, channels, num_frames, *size)  # (1, C, T, H, W)
        t = torch.tensor([999])
        flops = count_flops(lambda: model(video, t, encoder_hidden_states=text_states))
    return [CostTerm(name, flops, per_step=True, params=_params(model))]


# -- paper scale (meta device) -----------------------------------------------------------------


@functools.cache
def paper_scale_terms() -> tuple[dict[str, list[CostTerm]], CostTerm]:
    """Per-call FLOPs of CMD and the two baselines at the paper's text-to-video setting, built
    at full size on the meta device (a few seconds; cached per process).

    Returns:
        ({"cmd" | "unet3d" | "video_dit": terms}, the SD VAE decoding the 16 frames, which every
        latent model here needs once per video and which is left out of their totals).
    """
    from ..config import load_config
    from ..models.autoencoder import CMDAutoencoder, autoencoder_preset
    from ..models.baselines import (
        STABLE_DIFFUSION_VAE,
        build_stable_diffusion_vae,
        build_video_dit,
        build_video_unet,
    )
    from ..models.content import build_content_dit, build_content_unet
    from ..models.motion_dit import MotionDiT, motion_dit_preset
    from ..models.text import TextEmbeddings

    config = load_config(PAPER_CONFIG)
    f = 2 ** (len(STABLE_DIFFUSION_VAE["block_out_channels"]) - 1)
    c = STABLE_DIFFUSION_VAE["latent_channels"]
    frames, h, w = config.data.num_frames, config.data.height // f, config.data.width // f
    width, tokens = CLIP_L
    with torch.device("meta"):
        ae = CMDAutoencoder(
            **{**autoencoder_preset(config.autoencoder.preset), **config.autoencoder.overrides}
        )
        build = build_content_dit if config.content.backbone == "dit" else build_content_unet
        content = build(config.content.preset, c, (h, w), 0, config.content.overrides, width)
        motion = MotionDiT(
            **{**motion_dit_preset(config.motion.preset), **config.motion.overrides},
            motion_channels=ae.config.motion_channels,
            content_channels=c,
            text_embed_dim=width,
        )
        text = TextEmbeddings(torch.randn(1, tokens, width), torch.randn(1, width))
        cmd = cmd_cost_terms(content, motion, ae, frames, text, text, text.pooled)
        cmd[0] = dataclasses.replace(cmd[0], name=f"content model ({config.content.preset})")
        cmd[1] = dataclasses.replace(cmd[1], name=f"motion DiT ({config.motion.preset})")
        unet = build_video_unet("modelscope-t2v")
        unet_terms = full_video_cost_terms(
            "3-D UNet", unet, c, frames, (h, w), torch.randn(1, OPENCLIP_H[1], OPENCLIP_H[0])
        )
        dit = build_video_dit("latte-xl", video_length=frames)
        dit_terms = full_video_cost_terms(
            "video DiT", dit, c, frames, (h, w), torch.randn(1, T5_XXL[1], T5_XXL[0])
        )
        vae = build_stable_diffusion_vae()
        latents = torch.randn(frames, c, h, w)  # the frames of one video, decoded as a batch
        vae_term = CostTerm(
            f"SD VAE decoder, {frames} frames",
            count_flops(lambda: vae.decode(latents)),
            per_step=False,
            params=_params(vae.decoder) + _params(vae.post_quant_conv),
        )
    return {"cmd": cmd, "unet3d": unet_terms, "video_dit": dit_terms}, vae_term


def _method_summary(terms: list[CostTerm], steps: int, unit: float) -> dict:
    """Per-video totals (in ``unit`` FLOPs: 1e12 → TFLOPs) and the per-component breakdown."""
    total = flops_per_video(terms, steps)
    return {
        "params_m": round(sum(t.params for t in terms) / 1e6, 1),
        "components": [
            {
                "name": t.name,
                "params_m": round(t.params / 1e6, 1),
                "calls": t.calls(steps),
                "per_call": round(t.per_call.flops / unit, 4),
                "per_video": round(t.per_call.flops * t.calls(steps) / unit, 3),
                "attention_share": round(t.per_call.attention_flops / max(t.per_call.flops, 1), 3),
            }
            for t in terms
        ],
        "flops_per_video": round(total.flops / unit, 3),
        "macs_per_video": round(total.macs / unit, 3),
        "macs_without_attention_per_video": round(total.macs_without_attention / unit, 3),
        "flops_per_video_cfg": round(flops_per_video(terms, steps, guidance=True).flops / unit, 3),
    }


def paper_scale_flops(steps: int = 50) -> dict:
    """FLOPs per video at the paper's setting, ours beside Table 4's; T = 1e12 throughout."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    terms, vae = paper_scale_terms()
    methods = {}
    for key in METHODS:
        methods[key] = {"label": LABELS[key], **_method_summary(terms[key], steps, 1e12)}
        methods[key]["paper_tflops"] = PAPER_TFLOPS.get(key) if steps == 50 else None
    cmd = methods["cmd"]
    ratios = {
        key: {
            "flops": round(methods[key]["flops_per_video"] / cmd["flops_per_video"], 2),
            "macs_without_attention": round(
                methods[key]["macs_without_attention_per_video"]
                / cmd["macs_without_attention_per_video"],
                2,
            ),
        }
        for key in ("unet3d", "video_dit")
    }
    ratios["unet3d"]["paper"] = round(PAPER_TFLOPS["unet3d"] / PAPER_TFLOPS["cmd"], 2)
    config = PAPER_CONFIG
    return {
        "setting": {
            "config": config,
            "video": "16 frames at 512x1024, SD VAE latents 4x16x64x128",
            "steps": steps,
            "counted_on": "meta device, torch.utils.flop_counter.FlopCounterMode",
            "classifier_free_guidance": "not included (per denoiser evaluation x steps); "
            "flops_per_video_cfg doubles every denoiser term",
            "text_encoders": "not included (once per video)",
        },
        "unit": "T = 1e12",
        "methods": methods,
        "shared_sd_vae_decoder": {
            "name": vae.name,
            "params_m": round(vae.params / 1e6, 1),
            "flops_per_video": round(vae.per_call.flops / 1e12, 3),
            "macs_without_attention_per_video": round(
                vae.per_call.macs_without_attention / 1e12, 3
            ),
            "note": "every latent model here decodes its 16 latent frames with it once; left out "
            "of every total, as in the paper's figures",
        },
        "paper_only": {"lvdm_tflops": PAPER_TFLOPS["lvdm"]},
        "ratios_over_cmd": ratios,
    }


# -- tiny scale: models built the way training builds them --------------------------------------


@dataclass
class TinySetting:
    """A config, the data the stages need (captions, classes) and one training batch."""

    config: Config
    captions: list[str]
    classes: list[str]
    batch: dict

    @property
    def prompt(self) -> str:
        return self.batch["caption"][0]

    @property
    def label(self) -> int:
        return int(self.batch["label"][0])


def tiny_setting(
    config_name: str = "tiny", overrides: list[str] | tuple = (), batch_size: int | None = None
) -> TinySetting:
    """The config (name or path, ``--set`` overrides), captions and a training batch of
    ``batch_size`` videos (default: the config's ``train.batch_size``)."""
    from ..config import load_config
    from ..data import build_train_and_eval, collate_videos, dataset_captions

    config = load_config(config_name, list(overrides))
    batch_size = batch_size or config.train.batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    data, _ = build_train_and_eval(config.data)
    if len(data) < batch_size:
        raise ValueError(f"the dataset has {len(data)} videos, fewer than batch_size {batch_size}")
    batch = collate_videos([data[i] for i in range(batch_size)])
    if "caption" not in batch:
        raise ValueError("the benchmark conditions every model on a prompt: use data with captions")
    return TinySetting(config, dataset_captions(data), list(getattr(data, "classes", [])), batch)


def cmd_stages(setting: TinySetting, device: str | None = None):
    """(codec, content stage, motion stage) with freshly initialised models, built by the
    training stages themselves; ``device="meta"`` builds the models without memory."""
    from ..training.stages import AutoencoderStage, ContentStage, MotionStage

    with torch.device(device or "cpu"):
        codec = AutoencoderStage(setting.config).codec
    if codec.autoencoder.config.motion_scaling_factor is None:
        # random weights: any factor will do, the motion stage only requires one
        codec.autoencoder.register_to_config(motion_scaling_factor=1.0)
    kwargs = dict(num_classes=len(setting.classes), captions=setting.captions,
                  class_names=setting.classes)  # fmt: skip
    content = ContentStage(setting.config, codec, **kwargs)
    motion = MotionStage(setting.config, codec, **kwargs)
    with torch.device(device or "cpu"):
        content.model(), motion.model()
    return codec, content, motion


def cmd_pipeline(setting: TinySetting):
    """A :class:`CMDPipeline` of freshly initialised tiny models (DDIM samplers)."""
    from diffusers import DDIMScheduler

    from ..pipelines.cmd import CMDPipeline

    codec, content_stage, motion_stage = cmd_stages(setting)
    content, motion = content_stage.model(), motion_stage.model()
    pipe = CMDPipeline(
        autoencoder=codec.autoencoder,
        content_model=content["net"],
        motion_model=motion["net"],
        content_scheduler=DDIMScheduler.from_config(content_stage.scheduler.config),
        motion_scheduler=DDIMScheduler.from_config(motion_stage.scheduler.config),
        vae=codec.frame_vae.vae if codec.latent_mode else None,
        text_encoder=content["text_encoder"] if "text_encoder" in content else content_stage.text_encoder,
        tokenizer=content_stage.tokenizer,
        motion_text_encoder=motion["text_encoder"] if "text_encoder" in motion else None,
        class_names=setting.classes or None,
        num_frames=setting.config.data.num_frames,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


class FullVideoStage:
    """The baseline's training stage, shaped like CMD's stages (``model()``, ``loss()``): a
    denoiser over the whole video, the content stage's noise schedule and prediction type, the
    prompt through its own built-in word encoder learned with it (as the tiny content model's).

    Args:
        config: the CMD config (data size, ``content`` noise schedule).
        captions: training captions (the word encoder's vocabulary).
        kind: "unet3d" (the content UNet's widths plus temporal layers) or "video_dit" (the
            tiny Latte preset at the video's size).
        content_unet: the CMD content UNet, or its config / kwargs, whose widths "unet3d"
            takes.
    """

    name = "baseline"

    def __init__(self, config, captions: list[str], kind: str = "unet3d", content_unet=None):
        from diffusers import DDPMScheduler

        from ..training.losses import PredictionType

        if kind not in ("unet3d", "video_dit"):
            raise ValueError(f"kind must be 'unet3d' or 'video_dit', got {kind!r}")
        if kind == "unet3d" and content_unet is None:
            raise ValueError("the 3-D UNet baseline takes its widths from the content UNet")
        self.config, self.captions, self.kind = config, captions, kind
        self.content_unet = content_unet
        cfg = config.content
        self.prediction_type = PredictionType(cfg.prediction_type)
        self.scheduler = DDPMScheduler(
            num_train_timesteps=cfg.num_train_timesteps,
            beta_schedule=cfg.beta_schedule,
            prediction_type=self.prediction_type.value,
        )
        self._model = None

    @property
    def video_shape(self) -> tuple[int, int, int, int]:
        """(C, T, H, W) of the videos it denoises (pixels)."""
        data = self.config.data
        return 3, data.num_frames, data.height, data.width

    def model(self) -> nn.ModuleDict:
        from ..models.baselines import (
            build_video_dit,
            video_unet_kwargs_from_image_unet,
        )
        from ..models.text import WordTextEncoder

        if self._model is None:
            encoder = WordTextEncoder.from_captions(self.captions)
            c, t, h, w = self.video_shape
            if self.kind == "unet3d":
                from diffusers import UNet3DConditionModel

                image = getattr(self.content_unet, "config", self.content_unet)
                if "block_out_channels" not in image:
                    raise ValueError(
                        "the 3-D UNet baseline takes its widths from a UNet content model; "
                        "content.backbone=dit has none"
                    )
                kwargs = video_unet_kwargs_from_image_unet(image, c, encoder.embed_dim)
                net = UNet3DConditionModel(sample_size=h, **kwargs)
            else:
                net = build_video_dit(
                    "tiny", in_channels=c, out_channels=c, sample_size=h, video_length=t,
                    caption_channels=encoder.embed_dim,
                )  # fmt: skip
            self._model = nn.ModuleDict({"net": net, "text_encoder": encoder})
        return self._model

    def denoiser(self, model: nn.ModuleDict, text_states: torch.Tensor):
        """``(noisy video, t) -> prediction`` conditioned on text states (B, L, D)."""

        def run(x, t):
            return model["net"](x, t, encoder_hidden_states=text_states).sample

        return run

    def loss(self, model: nn.ModuleDict, batch: dict):
        from ..models.text import encode_prompts
        from ..training.losses import diffusion_loss

        video = batch["video"]  # (B, 3, T, H, W) in [-1, 1]
        text = encode_prompts(model["text_encoder"], None, batch["caption"], video.device)
        loss = diffusion_loss(
            self.denoiser(model, text.hidden), video, self.scheduler, self.prediction_type
        )
        return loss, {}


@torch.no_grad()
def sample_full_video(
    stage: FullVideoStage,
    prompts: list[str],
    num_inference_steps: int,
    generator: torch.Generator | None = None,
    device="cpu",
) -> torch.Tensor:
    """The baseline's sampling: encode the prompts, then DDIM over the whole video (pixels, so
    no decoder). Returns (B, 3, T, H, W)."""
    from diffusers import DDIMScheduler

    from ..models.text import encode_prompts
    from ..pipelines.denoise import denoise

    model = stage.model()
    text = encode_prompts(model["text_encoder"], None, prompts, device)
    return denoise(
        stage.denoiser(model, text.hidden),
        (len(prompts), *stage.video_shape),
        DDIMScheduler.from_config(stage.scheduler.config),
        num_inference_steps,
        generator,
        device,
        progress=False,
    )


def tiny_cost_terms(setting: TinySetting) -> dict[str, list[CostTerm]]:
    """Per-call FLOPs of the tiny CMD and both tiny baselines, built on the meta device."""
    from ..models.text import TextEmbeddings, text_embed_dim

    codec, content_stage, motion_stage = cmd_stages(setting, device="meta")
    content, motion = content_stage.model(), motion_stage.model()
    data = setting.config.data

    def text_of(stage, model):
        encoder = model["text_encoder"] if "text_encoder" in model else stage.text_encoder
        if encoder is None:
            return None
        width = text_embed_dim(encoder)
        tokens = getattr(encoder.config, "max_length", None) or stage.tokenizer.model_max_length
        with torch.device("meta"):
            mask = torch.ones(1, tokens, dtype=torch.bool) if stage.tokenizer is None else None
            return TextEmbeddings(torch.randn(1, tokens, width), torch.randn(1, width), mask)

    text = text_of(content_stage, content) if content_stage.use_text else None
    motion_text = text_of(motion_stage, motion) if motion_stage.use_text else None
    pooled = None if motion_text is None else motion_text.pooled
    terms = {
        "cmd": cmd_cost_terms(
            content["net"], motion["net"], codec.autoencoder, data.num_frames, text, text, pooled
        )
    }
    baselines = {"unet3d": _unet3d_stage(setting),
                 "video_dit": FullVideoStage(setting.config, setting.captions, "video_dit")}  # fmt: skip
    for kind, stage in baselines.items():
        with torch.device("meta"):
            model = stage.model()
            states = torch.randn(1, model["text_encoder"].config.max_length,
                                 model["text_encoder"].embed_dim)  # fmt: skip
        c, t, h, w = stage.video_shape
        terms[kind] = full_video_cost_terms(kind, model["net"], c, t, (h, w), states)
    return terms


def tiny_scale_flops(setting: TinySetting, steps: int) -> dict:
    """FLOPs per video (G = 1e9) of the tiny CMD and both tiny baselines."""
    terms = tiny_cost_terms(setting)
    return {key: {"label": TINY_LABELS[key], **_method_summary(terms[key], steps, 1e9)}
            for key in METHODS}  # fmt: skip


# -- tiny scale: measured jobs, each in a fresh process ----------------------------------------


class PeakMemory:
    """Peak memory of this process from construction on, in MiB, and how it was measured.

    - CUDA: the caching allocator's peak (``torch.cuda.max_memory_allocated`` after a reset):
      every tensor (weights, activations, optimizer state), like the paper's GPU figures.
    - CPU on Linux: the kernel's resident-set high-water mark (``VmHWM``), reset at
      construction through ``/proc/self/clear_refs``, minus the resident set then (``VmRSS``).
      tracemalloc does not see torch's allocations; RSS does, with allocator and library
      overhead (e.g. oneDNN scratch buffers). Memory freed earlier but kept by the allocator
      is reused without raising RSS, so only a fresh process measures a job alone: the
      benchmark runs each job in its own (``isolate``).
    - CPU elsewhere: the growth of ``getrusage``'s ``ru_maxrss``, a lower bound (the process's
      earlier peak, e.g. during imports, hides whatever stays below it).
    """

    def __init__(self, device: str):
        self.device = torch.device(device)
        self.start: int | None = None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.method = "CUDA allocator peak (torch.cuda.max_memory_allocated)"
        elif _reset_peak_rss():
            self.start = _proc_status_bytes("VmRSS")
            self.method = "peak RSS (VmHWM, reset at the job's start) minus RSS at its start"
        else:
            self.start = _ru_maxrss_bytes()
            self.method = "growth of getrusage ru_maxrss (a lower bound)"

    def peak_mib(self) -> float | None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        if self.start is None:
            return None
        peak = _proc_status_bytes("VmHWM") if "VmHWM" in self.method else _ru_maxrss_bytes()
        return round((peak - self.start) / 2**20, 1)


def _reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _proc_status_bytes("VmHWM") is not None
    except OSError:
        return False


def _proc_status_bytes(field: str) -> int | None:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    return None


def _ru_maxrss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _median_seconds(fn: Callable[[], object], repeats: int, device: str, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` untimed runs."""

    def sync():
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def _sample_cmd(setting: TinySetting, steps: int, repeats: int, device: str) -> dict:
    """CMD per video = (pipeline at 1 step: text, first step, decoding, output) + (steps - 1) ×
    (one content step + one motion step). Everything through the pipeline's own functions, at
    guidance scale 1 (no CFG), batch 1."""
    from ..models.content import num_content_classes, uses_text
    from ..models.text import encode_prompts
    from ..pipelines.denoise import sample_content, sample_motion

    pipe = cmd_pipeline(setting).to(device)
    unet, motion_model = pipe.content_model, pipe.motion_model
    prompt, label = [setting.prompt], torch.tensor([setting.label], device=device)
    labels = label if setting.classes and num_content_classes(unet) else None
    motion_labels = label if motion_model.config.num_classes else None
    generator = torch.Generator().manual_seed(0)
    accepts_text = pipe.accepts_text
    with torch.no_grad():
        text = null = pooled = None
        if uses_text(unet):
            text = encode_prompts(pipe.text_encoder, pipe.tokenizer, prompt, device)
            null = encode_prompts(pipe.text_encoder, pipe.tokenizer, [""], device)
        if motion_model.config.text_embed_dim:
            encoder = pipe.motion_text_encoder or pipe.text_encoder
            pooled = encode_prompts(encoder, pipe.tokenizer, prompt, device).pooled
        size = _spatial_size(unet)
        content = torch.randn(1, unet.config.in_channels, *size, device=device)
        h, w = pipe.autoencoder.token_grid(*size)
        num_frames = setting.config.data.num_frames

        def whole(n):
            return lambda: pipe(
                prompt=prompt if accepts_text else None,
                class_labels=[setting.label] if pipe.num_classes else None,
                num_inference_steps=n, guidance_scale=1.0, generator=generator, output_type="pt",
            )  # fmt: skip

        def content_step():
            return sample_content(unet, pipe.content_scheduler, 1, labels, text, null, 1.0, 1,
                                  generator, device, progress=False)  # fmt: skip

        def motion_step():
            return sample_motion(motion_model, pipe.motion_scheduler, content, num_frames, h + w,
                                 motion_labels, pooled, 1.0, 1, generator, progress=False)  # fmt: skip

        once = _median_seconds(whole(1), repeats, device)
        parts = {
            "content step": _median_seconds(content_step, repeats, device),
            "motion step": _median_seconds(motion_step, repeats, device),
        }
    per_step = sum(parts.values())
    return {
        "seconds_per_video": round(once + (steps - 1) * per_step, 4),
        "seconds_pipeline_one_step": round(once, 4),
        "seconds_per_step": round(per_step, 4),
        "parts": {k: round(v, 4) for k, v in parts.items()},
        "params_m": round(
            sum(_params(m) for m in pipe.components.values() if isinstance(m, nn.Module)) / 1e6, 3
        ),  # fmt: skip
    }


def _sample_unet3d(setting: TinySetting, steps: int, repeats: int, device: str) -> dict:
    """The 3-D UNet per video = (prompt + first step) + (steps - 1) × one denoising step."""
    from diffusers import DDIMScheduler

    from ..models.text import encode_prompts
    from ..pipelines.denoise import denoise

    stage = _unet3d_stage(setting)
    model = stage.model().to(device).eval()
    generator = torch.Generator().manual_seed(0)
    prompt = [setting.prompt]
    scheduler = DDIMScheduler.from_config(stage.scheduler.config)
    with torch.no_grad():
        states = encode_prompts(model["text_encoder"], None, prompt, device).hidden

        def one_step():
            return denoise(stage.denoiser(model, states), (1, *stage.video_shape), scheduler, 1,
                           generator, device, progress=False)  # fmt: skip

        once = _median_seconds(
            lambda: sample_full_video(stage, prompt, 1, generator, device), repeats, device
        )
        step = _median_seconds(one_step, repeats, device)
    return {
        "seconds_per_video": round(once + (steps - 1) * step, 4),
        "seconds_pipeline_one_step": round(once, 4),
        "seconds_per_step": round(step, 4),
        "parts": {"denoising step": round(step, 4)},
        "params_m": round(_params(model) / 1e6, 3),
    }


def _unet3d_stage(setting: TinySetting) -> FullVideoStage:
    from ..models.content import content_unet_preset

    content = setting.config.content
    if content.backbone != "unet":
        raise ValueError(
            "the tiny 3-D UNet baseline takes its widths from the content UNet; "
            f"content.backbone is {content.backbone!r}"
        )
    unet_config = {**content_unet_preset(content.preset), **(content.overrides or {})}
    return FullVideoStage(setting.config, setting.captions, "unet3d", unet_config)


def _train_stage(stage, setting: TinySetting, repeats: int, device: str) -> dict:
    """Median seconds of one training step as :class:`cmdvideo.training.trainer.Trainer` takes
    it (loss, backward, gradient clipping, AdamW, EMA update), on one fixed batch (data loading
    left out), after one untimed step that allocates the optimizer state."""
    from diffusers.training_utils import EMAModel

    cfg = setting.config.train
    model = stage.model().to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, betas=tuple(cfg.adam_betas),
                                  weight_decay=cfg.weight_decay)  # fmt: skip
    ema = EMAModel(params, decay=cfg.ema_decay)

    def step(batch):
        loss, _ = stage.loss(model, batch)
        loss.backward()
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.step(params)

    batch = _to(setting.batch, device)
    result = {
        "seconds_per_step": round(_median_seconds(lambda: step(batch), repeats, device), 4),
        "params_m": round(sum(p.numel() for p in params) / 1e6, 3),
    }
    codec = getattr(stage, "codec", None)
    if codec is not None and stage.name in ("content", "motion"):
        # from a latent cache (`cmdvideo cache`): the frozen encoder is not run every step
        with torch.no_grad():
            content, motion = codec.to(device).encode(batch["video"])
        cached = {**{k: v for k, v in batch.items() if k != "video"},
                  "content": content, "motion": motion}  # fmt: skip
        result["seconds_per_step_from_latent_cache"] = round(
            _median_seconds(lambda: step(cached), repeats, device), 4
        )
    return result


def _train_cmd(stage_name: str):
    def job(setting: TinySetting, steps: int, repeats: int, device: str) -> dict:
        from ..training.stages import AutoencoderStage

        if stage_name == "autoencoder":
            stage = AutoencoderStage(setting.config)
        else:
            _, content, motion = cmd_stages(setting)
            stage = content if stage_name == "content" else motion
        return _train_stage(stage, setting, repeats, device)

    return job


def _train_unet3d(setting: TinySetting, steps: int, repeats: int, device: str) -> dict:
    return _train_stage(_unet3d_stage(setting), setting, repeats, device)


JOBS: dict[str, Callable[[TinySetting, int, int, str], dict]] = {
    "sample-cmd": _sample_cmd,
    "sample-unet3d": _sample_unet3d,
    "train-autoencoder": _train_cmd("autoencoder"),
    "train-content": _train_cmd("content"),
    "train-motion": _train_cmd("motion"),
    "train-unet3d": _train_unet3d,
}


def run_job(
    job: str,
    config: str = "tiny",
    overrides: list[str] | tuple = (),
    steps: int = 50,
    repeats: int = 3,
    batch_size: int | None = None,
    device: str = "cpu",
    threads: int | None = None,
    measure_memory: bool = False,
    setting: TinySetting | None = None,
) -> dict:
    """Run one measurement of :data:`JOBS`; ``measure_memory`` only in a fresh process (see
    :class:`PeakMemory`). ``setting`` reuses data already loaded (else built from ``config``)."""
    if job not in JOBS:
        raise ValueError(f"unknown benchmark job {job!r}; choose one of {sorted(JOBS)}")
    # Everything a job imports, imported before the memory baseline.
    import diffusers  # noqa: F401

    from ..pipelines import cmd  # noqa: F401
    from ..training import stages  # noqa: F401

    setting = setting or tiny_setting(config, overrides, batch_size)
    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    try:
        memory = PeakMemory(device) if measure_memory else None
        torch.manual_seed(0)
        result = JOBS[job](setting, steps, repeats, device)
    finally:
        torch.set_num_threads(default_threads)
    result["peak_memory_mib"] = memory.peak_mib() if memory else None
    result["memory_method"] = memory.method if memory else "not measured (not in a fresh process)"
    return result


def _run_isolated(job: str, **kwargs) -> dict:
    """``run_job`` in a fresh Python process (``python -m cmdvideo.evaluation.efficiency``)."""
    args = json.dumps({"job": job, **kwargs, "measure_memory": True})
    proc = subprocess.run(
        [sys.executable, "-m", "cmdvideo.evaluation.efficiency", args],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark job {job} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def tiny_scale_measurements(
    config: str = "tiny",
    overrides: list[str] | tuple = (),
    steps: int = 50,
    repeats: int = 3,
    batch_size: int | None = None,
    device: str = "cpu",
    threads: int | None = None,
    isolate: bool = True,
) -> dict:
    """Time and peak memory per video and training time per step, CMD against the 3-D UNet
    built from the content UNet's widths, in one run; ratios = baseline / CMD."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    kwargs = dict(config=config, overrides=list(overrides), steps=steps, repeats=repeats,
                  batch_size=batch_size, device=device, threads=threads)  # fmt: skip
    setting = tiny_setting(config, overrides, batch_size)
    results = {}
    for job in JOBS:
        logger.info("bench: %s (%s)", job, "fresh process" if isolate else "in process")
        start = time.perf_counter()
        if isolate:
            results[job] = _run_isolated(job, **kwargs)
        else:
            results[job] = run_job(job, **kwargs, setting=setting)
        logger.info("bench: %s done in %.1f s", job, time.perf_counter() - start)
    data = setting.config.data
    sampling = {"cmd": results["sample-cmd"], "unet3d": results["sample-unet3d"]}
    training = {name: results[f"train-{name}"] for name in ("autoencoder", "content", "motion", "unet3d")}  # fmt: skip
    flops = tiny_scale_flops(setting, steps)

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else round(a / b, 2)

    base = training["unet3d"]["seconds_per_step"]
    return {
        "setting": {
            "config": config,
            "overrides": list(overrides),
            "video": f"3x{data.num_frames}x{data.height}x{data.width} pixels",
            "steps": steps,
            "repeats": repeats,
            "statistic": "median",
            "training_batch_size": setting.batch["video"].shape[0],
            "device": str(device),
            "torch_threads": threads or torch.get_num_threads(),
            "load_average": _load_average(),
            "guidance": "scale 1 (no CFG) for every model",
            "isolated_processes": isolate,
            "memory": f"{results['sample-cmd']['memory_method']}, in a fresh process per job"
            if isolate
            else "not measured: needs a fresh process per job (isolate)",
            "time_per_video": "pipeline at 1 step (text, first step, decoding) + (steps - 1) x "
            "median time of one more step: a step costs the same every time",
        },
        "flops": flops,
        "sampling": sampling,
        "training": training,
        "ratios_over_cmd": {
            "time_per_video": ratio(
                sampling["unet3d"]["seconds_per_video"], sampling["cmd"]["seconds_per_video"]
            ),
            "peak_memory_sampling": ratio(
                sampling["unet3d"]["peak_memory_mib"], sampling["cmd"]["peak_memory_mib"]
            ),
            "flops_per_video": ratio(
                flops["unet3d"]["flops_per_video"], flops["cmd"]["flops_per_video"]
            ),
            "training_step": {
                name: ratio(base, training[name]["seconds_per_step"])
                for name in ("autoencoder", "content", "motion")
            },
            "training_step_memory": {
                name: ratio(
                    training["unet3d"]["peak_memory_mib"], training[name]["peak_memory_mib"]
                )
                for name in ("autoencoder", "content", "motion")
            },
        },
    }


def _load_average() -> list[float] | None:
    try:
        import os

        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


# -- the whole benchmark ------------------------------------------------------------------------


def run_benchmark(
    scale: str = "both",
    steps: int = 50,
    repeats: int = 3,
    out: str | Path | None = "results/bench",
    device: str = "cpu",
    config: str = "tiny",
    overrides: list[str] | tuple = (),
    batch_size: int | None = None,
    threads: int | None = None,
    isolate: bool = True,
) -> dict:
    """FLOPs at paper scale and/or measurements at tiny scale; writes ``OUT/efficiency.md``,
    ``.json`` and ``.png`` when ``out`` is given.

    Args:
        scale: "paper" (FLOPs on the meta device, seconds), "tiny" (time and memory, minutes)
            or "both".
        steps: sampling steps (DDIM) per video, every model.
        repeats: timed repetitions per measurement (medians are reported).
        device: where the tiny models run ("cpu", "cuda"); paper scale is always counted on meta.
        config, overrides: the tiny-scale config (name or path) and ``--set`` overrides.
        batch_size: training batch of every stage and of the baseline (default: the config's).
        threads: torch CPU threads for the tiny measurements (default: torch's).
        isolate: each tiny measurement in a fresh process (required for CPU peak memory).

    Returns:
        The result dict (also ``efficiency.json``); with paper scale it has
        ``cmd_tflops_per_video``, ``unet3d_tflops_per_video``, ``video_dit_tflops_per_video``.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    start = time.perf_counter()
    result: dict = {"scale": scale, "steps": steps}
    if scale in ("paper", "both"):
        paper = paper_scale_flops(steps)
        result["paper"] = paper
        for key in METHODS:
            result[f"{key}_tflops_per_video"] = paper["methods"][key]["flops_per_video"]
        result["flop_convention"] = (
            "2 FLOPs per multiply-add (FlopCounterMode), attention products included, no CFG, "
            "text encoders and the shared SD VAE decoder excluded"
        )
    if scale in ("tiny", "both"):
        result["tiny"] = tiny_scale_measurements(
            config, overrides, steps, repeats, batch_size, device, threads, isolate
        )
    result["seconds"] = round(time.perf_counter() - start, 1)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        files = {"markdown": out / "efficiency.md", "json": out / "efficiency.json",
                 "chart": out / "efficiency.png"}  # fmt: skip
        result["files"] = {k: str(v) for k, v in files.items()}
        files["markdown"].write_text(format_markdown(result))
        plot_benchmark(result, files["chart"])
        files["json"].write_text(json.dumps(result, indent=2) + "\n")
    return result


# -- reporting ----------------------------------------------------------------------------------


def _fmt(x, digits: int = 1) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def format_markdown(result: dict) -> str:
    """The report: paper-scale FLOPs beside Table 4, tiny measurements, conventions."""
    lines = [f"# CMD efficiency benchmark (`cmdvideo bench --scale {result['scale']} "
             f"--steps {result['steps']}`)", ""]  # fmt: skip
    if "paper" in result:
        lines += _paper_markdown(result["paper"])
    if "tiny" in result:
        lines += _tiny_markdown(result["tiny"])
    return "\n".join(lines) + "\n"


def _paper_markdown(paper: dict) -> list[str]:
    m, steps = paper["methods"], paper["setting"]["steps"]
    cmd = m["cmd"]
    lines = [
        f"## Paper scale: FLOPs per video (512×1024, 16 frames, latent, {steps} DDIM steps)",
        "",
        "Counted with `FlopCounterMode` on the meta device; T = 10¹². *TFLOPs*: 2 per "
        "multiply-add, attention products included. *TMACs w/o attn.*: multiply-adds without "
        "the attention products, the convention the paper's Table 4 matches.",
        "",
        "| model | parameters | TFLOPs | TMACs | TMACs w/o attn. | paper (Table 4) | "
        "× CMD (TFLOPs) | × CMD (w/o attn.) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratios = paper["ratios_over_cmd"]
    for key in METHODS:
        row = m[key]
        r = ratios.get(key, {"flops": 1.0, "macs_without_attention": 1.0})
        lines.append(
            f"| {row['label']} | {_fmt(row['params_m'])} M | {_fmt(row['flops_per_video'])} | "
            f"{_fmt(row['macs_per_video'])} | {_fmt(row['macs_without_attention_per_video'])} | "
            f"{_fmt(row['paper_tflops'])} | {r['flops']:.1f}× | {r['macs_without_attention']:.1f}× |"
        )
    lines.append(
        f"| LVDM (not built here) | – | – | – | – | {_fmt(PAPER_TFLOPS['lvdm'])} | – | – |"
    )
    lines += ["", "CMD by component (per video):", "",
              "| component | parameters | calls | TFLOPs per call | TFLOPs | attention share |",
              "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for comp in cmd["components"]:
        lines.append(
            f"| {comp['name']} | {_fmt(comp['params_m'])} M | {comp['calls']} | "
            f"{comp['per_call']:.3f} | {_fmt(comp['per_video'])} | {comp['attention_share']:.0%} |"
        )
    vae = paper["shared_sd_vae_decoder"]
    lines += [
        "",
        "Notes:",
        f"- Paper ratio ModelScope / CMD: {ratios['unet3d']['paper']:.1f}×; ours "
        f"{ratios['unet3d']['macs_without_attention']:.1f}× in the paper's convention, "
        f"{ratios['unet3d']['flops']:.1f}× counting attention.",
        "- The ModelScope-architecture UNet comes out at "
        f"{_fmt(m['unet3d']['macs_without_attention_per_video'])} TMACs without attention "
        f"against the paper's {_fmt(PAPER_TFLOPS['unet3d'])}: the paper's figures appear to "
        "count one FLOP per multiply-add and not the attention products (what fvcore/thop "
        "do with fused attention kernels). FlopCounterMode counts 2 per multiply-add, hence "
        "TFLOPs ≈ 2 × TMACs.",
        f"- CMD: {_fmt(cmd['macs_without_attention_per_video'])} against the paper's "
        f"{_fmt(PAPER_TFLOPS['cmd'])}. The content model is SD 1.5's UNet at 64×128 latents, "
        "as in the paper; the motion DiT and autoencoder sizes are our reading of the paper "
        "(not its released configuration), so the small difference is expected.",
        f"- Classifier-free guidance is not included; with it every denoiser term doubles: "
        f"CMD {_fmt(cmd['flops_per_video_cfg'])}, 3-D UNet "
        f"{_fmt(m['unet3d']['flops_per_video_cfg'])}, DiT "
        f"{_fmt(m['video_dit']['flops_per_video_cfg'])} TFLOPs.",
        f"- Not in any total: the text encoders (once per video) and the {vae['name']} "
        f"({_fmt(vae['flops_per_video'])} TFLOPs, {_fmt(vae['macs_without_attention_per_video'])} "
        "TMACs w/o attention), which all three latent models need alike; the paper's figures "
        "leave it out too (CMD's 46.8 could not hold it).",
        "- The DiT is diffusers' Latte-1 configuration (28 spatial + 28 temporal blocks, 1152 "
        "wide, patch 2) run on the 64×128 latents: every one of the 16×32×64 tokens, every step.",
        "",
    ]
    return lines


def _tiny_markdown(tiny: dict) -> list[str]:
    s, samp, train, flops = tiny["setting"], tiny["sampling"], tiny["training"], tiny["flops"]
    r = tiny["ratios_over_cmd"]
    lines = [
        f"## Tiny scale, measured ({s['video']}, {s['steps']} DDIM steps, {s['device']}, "
        f"{s['torch_threads']} threads)",
        "",
        "The 3-D UNet has the tiny content UNet's levels (widths, layers, group norm, "
        "cross-attention where it attends) plus diffusers' temporal convolutions and temporal "
        "attention, on the whole pixel video; text from its own built-in word encoder.",
        "",
        f"Medians of {s['repeats']} runs, batch 1, no CFG. Time per video: {s['time_per_video']}. "
        f"Peak memory: {s['memory']}. Load average during the run: {s['load_average']}.",
        "",
        "| model | parameters | GFLOPs / video | time / video (s) | peak memory (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for key in ("cmd", "unet3d"):
        lines.append(
            f"| {flops[key]['label']} | {_fmt(samp[key]['params_m'], 2)} M | "
            f"{_fmt(flops[key]['flops_per_video'])} | {_fmt(samp[key]['seconds_per_video'], 2)} | "
            f"{_fmt(samp[key]['peak_memory_mib'])} |"
        )
    lines += [
        f"| {flops['video_dit']['label']} (FLOPs only) | {_fmt(flops['video_dit']['params_m'], 2)} M | "
        f"{_fmt(flops['video_dit']['flops_per_video'])} | – | – |",
        f"| **3-D UNet / CMD** | | **{_fmt(r['flops_per_video'])}×** | "
        f"**{_fmt(r['time_per_video'])}×** | **{_fmt(r['peak_memory_sampling'])}×** |",
        "",
        f"Training, per step (batch {s['training_batch_size']}: loss, backward, clipping, AdamW, "
        "EMA; one fixed batch, data loading left out). The content and motion stages encode "
        "the batch with the frozen autoencoder every step, as `cmdvideo train` does from "
        "videos; the last column trains from a latent cache (`cmdvideo cache`) instead.",
        "",
        "| stage | parameters | s / step | 3-D UNet / stage | peak memory (MiB) | "
        "s / step from latent cache |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    names = {"autoencoder": "CMD autoencoder", "content": "CMD content model",
             "motion": "CMD motion model", "unet3d": "3-D UNet baseline"}  # fmt: skip
    for key, label in names.items():
        row = train[key]
        ratio = r["training_step"].get(key)
        lines.append(
            f"| {label} | {_fmt(row['params_m'], 2)} M | {_fmt(row['seconds_per_step'], 3)} | "
            f"{'–' if ratio is None else f'{ratio:.1f}×'} | {_fmt(row['peak_memory_mib'])} | "
            f"{_fmt(row.get('seconds_per_step_from_latent_cache'), 3)} |"
        )
    lines.append("")
    return lines


def plot_benchmark(result: dict, path: str | Path) -> Path:
    """Bar charts: paper-scale TFLOPs per video (log scale) beside the paper's; tiny time and
    memory per video; training seconds per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (1 if "paper" in result else 0) + (3 if "tiny" in result else 0)
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.2), squeeze=False)
    axes = list(axes[0])
    if "paper" in result:
        ax = axes.pop(0)
        m = result["paper"]["methods"]
        names = ["CMD", "3-D UNet\n(ModelScope)", "video DiT\n(Latte)", "LVDM"]
        series = {
            "ours, 2 per MAC": [m[k]["flops_per_video"] for k in METHODS] + [None],
            "ours, MACs w/o attn.": [m[k]["macs_without_attention_per_video"] for k in METHODS]
            + [None],
            "paper (Table 4)": [PAPER_TFLOPS["cmd"], PAPER_TFLOPS["unet3d"], None,
                                PAPER_TFLOPS["lvdm"]],
        }  # fmt: skip
        _grouped_bars(ax, names, series)
        ax.set(yscale="log", ylabel="TFLOPs per video",
               title=f"Paper scale, {result['steps']} steps (meta)")  # fmt: skip
    if "tiny" in result:
        tiny = result["tiny"]
        ratios, device = tiny["ratios_over_cmd"], tiny["setting"]["device"]
        names = ["CMD", "3-D UNet"]
        panels = (("seconds_per_video", "time_per_video", "seconds", f"time per video ({device})"),
                  ("peak_memory_mib", "peak_memory_sampling", "MiB", "peak memory, sampling"))  # fmt: skip
        for key, ratio, unit, title in panels:
            ax = axes.pop(0)
            _grouped_bars(ax, names, {unit: [tiny["sampling"][k][key] for k in ("cmd", "unet3d")]})
            ax.set(ylabel=unit, title=f"Tiny: {title}, {_fmt(ratios[ratio])}×")
        ax = axes.pop(0)
        keys = ("autoencoder", "content", "motion", "unet3d")
        _grouped_bars(ax, ["CMD\nautoenc.", "CMD\ncontent", "CMD\nmotion", "3-D UNet"],
                      {"s / step": [tiny["training"][k]["seconds_per_step"] for k in keys]})  # fmt: skip
        ax.set(
            ylabel="seconds",
            title=f"Tiny: training step, batch {tiny['setting']['training_batch_size']}",
        )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _grouped_bars(ax, names: list[str], series: dict[str, list]) -> None:
    n = len(series)
    width = 0.8 / n
    for i, (label, values) in enumerate(series.items()):
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(names))]
        heights = [0 if v is None else v for v in values]
        bars = ax.bar(xs, heights, width, label=label if n > 1 else None)
        for bar, v in zip(bars, values):
            if v is not None:
                ax.annotate(f"{v:,.0f}" if v >= 100 else f"{v:.3g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=7)  # fmt: skip
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    if n > 1:
        ax.legend(fontsize=7)


def _worker_main(argv: list[str] | None = None) -> int:
    """``python -m cmdvideo.evaluation.efficiency '{"job": ..., ...}'``: one job, JSON out."""
    args = json.loads((argv if argv is not None else sys.argv[1:])[0])
    print(json.dumps(run_job(**args)))
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main())


def pipeline_flops_comparison(pipe, steps: int = 50, prompt: str = "a red circle") -> dict:
    """FLOPs per video (G = 1e9, no CFG) of a loaded :class:`CMDPipeline` against a 3-D UNet
    with its content UNet's widths plus temporal layers on the whole video of the same size —
    the conventional baseline, as in ``cmdvideo bench``. CMD is counted by running its models
    once each (cheap at demo size); the baseline on the meta device.

    Returns:
        {"cmd_gflops", "unet3d_gflops", "steps", "video_shape": [C, T, H, W]}.
    """
    from diffusers import UNet3DConditionModel

    from ..models.baselines import video_unet_kwargs_from_image_unet
    from ..models.content import uses_text

    content_model, autoencoder = pipe.content_model, pipe.autoencoder
    device = pipe.device
    text = null = pooled = None
    if uses_text(content_model):
        text = pipe._embed(pipe.text_encoder, [prompt], device)
        null = pipe._embed(pipe.text_encoder, [""], device)
    if pipe.motion_model.config.text_embed_dim:
        encoder = pipe.motion_text_encoder or pipe.text_encoder
        pooled = pipe._embed(encoder, [prompt], device).pooled
    num_frames = pipe.config.num_frames
    cmd = flops_per_video(
        cmd_cost_terms(content_model, pipe.motion_model, autoencoder, num_frames, text, null,
                       pooled),
        steps,
    )  # fmt: skip
    channels = content_model.config.in_channels
    h, w = _spatial_size(content_model)
    width = content_model.config.cross_attention_dim
    width = width if isinstance(width, int) else width[0]
    with torch.device("meta"):
        baseline = UNet3DConditionModel(
            **video_unet_kwargs_from_image_unet(dict(content_model.config), channels, width)
        )
        states = torch.randn(1, 8, width)
    unet3d = flops_per_video(
        full_video_cost_terms("unet3d", baseline, channels, num_frames, (h, w), states), steps
    )
    return {
        "cmd_gflops": cmd.flops / 1e9,
        "unet3d_gflops": unet3d.flops / 1e9,
        "steps": steps,
        "video_shape": [channels, num_frames, h, w],
    }

"""FLOPs per video, CMD against full-video diffusion (paper §4.3, Table 4), for the same output
video and the same number of sampling steps.

At paper scale (512×1024, 16 frames, SD VAE latents 4×16×64×128): CMD runs its content model
and its motion model once per step and its decoder once; a full-video baseline runs its
denoiser over the whole video once per step. The models are built at full size on the ``meta``
device and counted with ``torch.utils.flop_counter.FlopCounterMode``, so no memory is spent and
no weights are needed. The tiny-scale models are counted the same way.

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
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .tiny import TinySetting, cmd_stages

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


def num_params(module: nn.Module) -> int:
    """Parameters of ``module`` (meta tensors count too)."""
    return sum(p.numel() for p in module.parameters())


def spatial_size(model) -> tuple[int, int]:
    """(H, W) a diffusers image model's ``sample_size`` means (an int is square)."""
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
    h, w = spatial_size(content_model)
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
        CostTerm("content model", content_flops, per_step=True, params=num_params(content_model)),
        CostTerm("motion model", motion_flops, per_step=True, params=num_params(motion_model)),
        CostTerm("CMD decoder", decoder_flops, per_step=False, params=_decoder_params(autoencoder)),
    ]


def _decoder_params(autoencoder) -> int:
    """Parameters the CMD decoder uses (§3.1: content/motion embeddings, transformer, output)."""
    parts = ("content_embed", "motion_embed_x", "motion_embed_y", "decoder", "output_proj")
    return sum(num_params(getattr(autoencoder, name)) for name in parts)


def full_video_cost_terms(
    name: str, model, channels: int, num_frames: int, size: tuple[int, int], text_states
) -> list[CostTerm]:
    """FLOPs of a full-video denoiser (``UNet3DConditionModel`` or ``LatteTransformer3DModel``)
    on a (1, C, T, H, W) video, text states (1, L, D): one call per sampling step."""
    with torch.device(model.device):
        video = torch.randn(1, channels, num_frames, *size)  # (1, C, T, H, W)
        t = torch.tensor([999])
        flops = count_flops(lambda: model(video, t, encoder_hidden_states=text_states))
    return [CostTerm(name, flops, per_step=True, params=num_params(model))]


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
    from ..models.content import build_content_dit, build_content_unet
    from ..models.motion_dit import MotionDiT, motion_dit_preset
    from ..models.text import TextEmbeddings
    from .baselines import (
        STABLE_DIFFUSION_VAE,
        build_stable_diffusion_vae,
        build_video_dit,
        build_video_unet,
    )

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
            params=num_params(vae.decoder) + num_params(vae.post_quant_conv),
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


# -- tiny scale and a loaded pipeline ----------------------------------------------------------


def tiny_cost_terms(setting: TinySetting) -> dict[str, list[CostTerm]]:
    """Per-call FLOPs of the tiny CMD and both tiny baselines, built on the meta device."""
    from ..models.text import TextEmbeddings, text_embed_dim
    from .baseline_stage import FullVideoStage, unet3d_stage

    codec, content_stage, motion_stage = cmd_stages(setting, device="meta")
    content, motion = content_stage.model(), motion_stage.model()
    data = setting.config.data

    def text_of(stage, model):
        encoder = getattr(model, "text_encoder", None) or stage.text_encoder
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
            content.net, motion.net, codec.autoencoder, data.num_frames, text, text, pooled
        )
    }
    baselines = {
        "unet3d": unet3d_stage(setting.config, setting.captions),
        "video_dit": FullVideoStage(setting.config, setting.captions, "video_dit"),
    }
    for kind, stage in baselines.items():
        with torch.device("meta"):
            model = stage.model()
            states = torch.randn(
                1, model.text_encoder.config.max_length, model.text_encoder.embed_dim
            )
        c, t, h, w = stage.video_shape
        terms[kind] = full_video_cost_terms(kind, model.net, c, t, (h, w), states)
    return terms


def tiny_scale_flops(setting: TinySetting, steps: int) -> dict:
    """FLOPs per video (G = 1e9) of the tiny CMD and both tiny baselines."""
    terms = tiny_cost_terms(setting)
    return {
        key: {"label": TINY_LABELS[key], **_method_summary(terms[key], steps, 1e9)}
        for key in METHODS
    }


def prompt_conditions(pipe, prompt: str, device) -> tuple:
    """(text, null text, pooled) that a :class:`CMDPipeline` conditions on for one prompt, as
    :func:`cmd_cost_terms` takes them: the prompt's and the empty prompt's
    :class:`cmdvideo.models.text.TextEmbeddings` for a text-conditioned content model, the
    prompt's (1, D) pooled embedding for a text-conditioned motion model, else None."""
    from ..models.content import uses_text
    from ..models.text import encode_prompts

    text = null = pooled = None
    if uses_text(pipe.content_model):
        text = encode_prompts(pipe.text_encoder, pipe.tokenizer, [prompt], device)
        null = encode_prompts(pipe.text_encoder, pipe.tokenizer, [""], device)
    if pipe.motion_model.config.text_embed_dim:
        encoder = pipe.motion_text_encoder or pipe.text_encoder
        pooled = encode_prompts(encoder, pipe.tokenizer, [prompt], device).pooled
    return text, null, pooled


def pipeline_flops_comparison(pipe, steps: int = 50, prompt: str = "a red circle") -> dict:
    """FLOPs per video (G = 1e9, no CFG) of a loaded :class:`CMDPipeline` against a 3-D UNet
    with its content UNet's widths plus temporal layers on the whole video of the same size —
    the conventional baseline, as in ``cmdvideo bench``. CMD is counted by running its models
    once each (cheap at demo size); the baseline on the meta device.

    Returns:
        {"cmd_gflops", "unet3d_gflops", "steps", "video_shape": [C, T, H, W]}.
    """
    from diffusers import UNet3DConditionModel

    from .baselines import video_unet_kwargs_from_image_unet

    content_model, autoencoder = pipe.content_model, pipe.autoencoder
    text, null, pooled = prompt_conditions(pipe, prompt, pipe.device)
    num_frames = pipe.config.num_frames
    cmd = flops_per_video(
        cmd_cost_terms(
            content_model, pipe.motion_model, autoencoder, num_frames, text, null, pooled
        ),
        steps,
    )
    channels = content_model.config.in_channels
    h, w = spatial_size(content_model)
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

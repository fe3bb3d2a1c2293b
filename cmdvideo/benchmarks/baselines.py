"""Full-video baselines for the efficiency comparison (paper §4.3, Table 4): denoisers that work on
every frame of the video at every sampling step, where CMD denoises one content frame and a
small motion latent.

- A 3-D UNet of ModelScope text-to-video's architecture: diffusers ``UNet3DConditionModel``
  (a 2-D image UNet with temporal convolutions and temporal attention after each layer).
- A full-video DiT over every T×h×w token: diffusers ``LatteTransformer3DModel`` (Latte's
  spatial and temporal transformer blocks, alternating).

Both are built from named presets (architecture only, random weights): the paper-scale ones for
counting FLOPs on the ``meta`` device, the tiny ones for measuring time and memory on a CPU.
"""

from __future__ import annotations

from diffusers import AutoencoderKL, LatteTransformer3DModel, UNet3DConditionModel

from ..models.blocks import named_preset
from ..models.content import CONTENT_UNET_PRESETS

# diffusers' UNet3DConditionModel knows two kinds of block per level: plain (ResNet + temporal
# convolution) and cross-attention (plus spatial and temporal transformers). An image UNet's
# attention levels become cross-attention levels, its plain levels stay plain.
_BLOCKS_3D = {
    "DownBlock2D": "DownBlock3D",
    "AttnDownBlock2D": "CrossAttnDownBlock3D",
    "CrossAttnDownBlock2D": "CrossAttnDownBlock3D",
    "UpBlock2D": "UpBlock3D",
    "AttnUpBlock2D": "CrossAttnUpBlock3D",
    "CrossAttnUpBlock2D": "CrossAttnUpBlock3D",
}


def video_unet_kwargs_from_image_unet(
    image_unet: dict, channels: int, cross_attention_dim: int
) -> dict:
    """``UNet3DConditionModel`` kwargs with an image UNet's widths, depth, attention levels and
    group norm, plus the temporal layers: the conventional way to turn an image diffusion model
    into a video one (ModelScope, VideoLDM), i.e. the baseline CMD's content model is set against.

    diffusers' ``UNet3DConditionModel`` reads ``attention_head_dim`` twice: as the number of
    heads of its blocks, and as the head width of its input temporal transformer (8 heads). It
    is set here so that this transformer is as wide as the first level (ModelScope's is wider:
    8 × 64 over 320 channels), which keeps the derived baseline lean: the image UNet's own value
    (32 in the tiny preset) would make that one layer 8 times wider than the level it works on
    and three quarters of the baseline's FLOPs.

    Args:
        image_unet: ``UNet2DConditionModel`` kwargs or config (block types, block_out_channels,
            layers_per_block, norm_num_groups).
        channels: input/output channels (3 pixels, 4 VAE latents).
        cross_attention_dim: width of the text states the UNet cross-attends to.
    """
    unknown = [
        name
        for name in (*image_unet["down_block_types"], *image_unet["up_block_types"])
        if name not in _BLOCKS_3D
    ]
    if unknown:
        raise ValueError(f"no 3-D counterpart for image UNet block(s) {unknown}")
    return dict(
        down_block_types=tuple(_BLOCKS_3D[n] for n in image_unet["down_block_types"]),
        up_block_types=tuple(_BLOCKS_3D[n] for n in image_unet["up_block_types"]),
        block_out_channels=tuple(image_unet["block_out_channels"]),
        layers_per_block=image_unet["layers_per_block"],
        attention_head_dim=max(1, image_unet["block_out_channels"][0] // 8),
        norm_num_groups=image_unet.get("norm_num_groups", 32),
        in_channels=channels,
        out_channels=channels,
        cross_attention_dim=cross_attention_dim,
    )


VIDEO_UNET_PRESETS: dict[str, dict] = {
    # ModelScope text-to-video (damo-vilab/text-to-video-ms-1.7b, unet/config.json): 1.41 B
    # parameters, SD-like widths, OpenCLIP ViT-H/14 text states (1024 wide), SD VAE latents.
    "modelscope-t2v": dict(
        down_block_types=("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",),
        up_block_types=("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        attention_head_dim=64,
        norm_num_groups=32,
        in_channels=4,
        out_channels=4,
        cross_attention_dim=1024,
    ),
    # The tiny content UNet's widths plus temporal layers, on 3-channel pixels; text states of
    # the built-in word encoder (64 wide), as the tiny content model's.
    "tiny": video_unet_kwargs_from_image_unet(
        CONTENT_UNET_PRESETS["tiny"], channels=3, cross_attention_dim=64
    ),
}

# Latte's block settings, the same at every size.
_LATTE_BLOCKS = dict(
    activation_fn="gelu-approximate",
    attention_bias=True,
    num_embeds_ada_norm=1000,
    norm_type="ada_norm_single",
    norm_elementwise_affine=False,
    norm_eps=1e-6,
)

VIDEO_DIT_PRESETS: dict[str, dict] = {
    # Latte-XL/2 as released for text-to-video (maxin-cn/Latte-1, transformer/config.json):
    # 28 spatial + 28 temporal blocks, 16 heads x 72 = 1152 wide, patch 2, learned variance
    # (8 output channels for 4 latent channels), T5-XXL text states (4096 wide).
    "latte-xl": dict(
        num_attention_heads=16,
        attention_head_dim=72,
        num_layers=28,
        patch_size=2,
        in_channels=4,
        out_channels=8,
        cross_attention_dim=1152,
        caption_channels=4096,
        sample_size=64,
        video_length=16,
        **_LATTE_BLOCKS,
    ),
    # The tiny motion DiT's size (128 wide, 4 blocks, 4 heads) over every pixel-space token.
    "tiny": dict(
        num_attention_heads=4,
        attention_head_dim=32,
        num_layers=4,
        patch_size=2,
        in_channels=3,
        out_channels=3,
        cross_attention_dim=128,
        caption_channels=64,
        sample_size=32,
        video_length=16,
        **_LATTE_BLOCKS,
    ),
}

# Stable Diffusion's frame VAE (AutoencoderKL, f=8, 4 latent channels): in latent mode CMD and
# both baselines decode their latents with it, frame by frame.
STABLE_DIFFUSION_VAE = dict(
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    layers_per_block=2,
    latent_channels=4,
    sample_size=512,
    scaling_factor=0.18215,
)


def build_video_unet(preset: str, **overrides) -> UNet3DConditionModel:
    """A fresh ``UNet3DConditionModel`` from ``VIDEO_UNET_PRESETS`` (unknown names list the
    valid ones). Input (B, C, T, H, W) and text states (B, L, cross_attention_dim)."""
    return UNet3DConditionModel(
        **{**named_preset(VIDEO_UNET_PRESETS, preset, "video UNet"), **overrides}
    )


def build_video_dit(preset: str, **overrides) -> LatteTransformer3DModel:
    """A fresh ``LatteTransformer3DModel`` from ``VIDEO_DIT_PRESETS``. Input (B, C, T, H, W)
    and text states (B, L, caption_channels)."""
    return LatteTransformer3DModel(
        **{**named_preset(VIDEO_DIT_PRESETS, preset, "video DiT"), **overrides}
    )


def build_stable_diffusion_vae() -> AutoencoderKL:
    """Stable Diffusion's VAE architecture (random weights; for counting its cost)."""
    return AutoencoderKL(**STABLE_DIFFUSION_VAE)

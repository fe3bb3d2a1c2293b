"""Mixed precision that is real: under ``train.mixed_precision: bf16`` every model call of a
training step (denoiser, frozen autoencoder, text encoder) runs in bf16 — checked by what the
modules see on CPU bf16 autocast — and a pipeline cast to bf16 generates."""

import pytest
import torch
from conftest import SMALL_AUTOENCODER

from cmdvideo.config import load_config
from cmdvideo.data import build_dataset
from cmdvideo.training.diffusion import ContentStage, MotionStage
from cmdvideo.training.stages import AutoencoderStage, build_codec
from cmdvideo.training.trainer import Trainer

SMALL = [
    "data.num_frames=4",
    "data.height=16",
    "data.width=16",
    "data.num_videos=16",
    *SMALL_AUTOENCODER,
    "content.overrides.block_out_channels=[16,32,32]",
    "content.overrides.norm_num_groups=8",
    "content.overrides.attention_head_dim=8",
    "content.condition=class+text",
    "motion.condition=class+text",
    "train.batch_size=2",
    "train.max_steps=1",
    "train.preview_every=0",
    "train.mixed_precision=bf16",
]


def _record_dtypes(module: torch.nn.Module, name: str, seen: dict) -> None:
    """Record the dtype of every matrix product (Linear / Conv output) inside ``module``: what
    autocast runs in bf16 (it keeps norms and softmax in float32 on purpose)."""

    def hook(mod, args, out):
        seen.setdefault(name, set()).add(out.dtype)

    for sub in module.modules():
        if isinstance(sub, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.Conv3d)):
            sub.register_forward_hook(hook)


@pytest.mark.parametrize("stage_cls", [ContentStage, MotionStage])
def test_bf16_reaches_the_denoiser_and_the_frozen_encoders(stage_cls, tmp_path):
    config = load_config("tiny", SMALL)
    torch.manual_seed(0)
    codec = build_codec(config)
    data = build_dataset(config.data)
    stage = stage_cls(config, codec, num_classes=10, captions=data.captions(16))
    model = stage.model()
    seen: dict = {}
    _record_dtypes(model.net, "denoiser", seen)
    _record_dtypes(model.text_encoder, "text encoder", seen)
    _record_dtypes(codec.autoencoder, "frozen autoencoder", seen)
    Trainer(stage, data, config, tmp_path).train()
    assert seen == {
        "denoiser": {torch.bfloat16},
        "text encoder": {torch.bfloat16},
        "frozen autoencoder": {torch.bfloat16},
    }


def test_bf16_reaches_the_autoencoder(tmp_path):
    config = load_config("tiny", SMALL)
    stage = AutoencoderStage(config)
    seen: dict = {}
    _record_dtypes(stage.codec.autoencoder, "autoencoder", seen)
    Trainer(stage, build_dataset(config.data), config, tmp_path).train()
    assert seen == {"autoencoder": {torch.bfloat16}}


def test_without_mixed_precision_everything_is_float32(tmp_path):
    config = load_config("tiny", SMALL + ["train.mixed_precision=no"])
    stage = AutoencoderStage(config)
    seen: dict = {}
    _record_dtypes(stage.codec.autoencoder, "autoencoder", seen)
    Trainer(stage, build_dataset(config.data), config, tmp_path).train()
    assert seen == {"autoencoder": {torch.float32}}


def test_pipeline_generates_in_bf16():
    from cmdvideo import CMDPipeline

    pipe = CMDPipeline.from_pretrained("moving-shapes-tiny")
    pipe.set_progress_bar_config(disable=True)
    call = dict(prompt="a red circle moving left on a blue background", num_inference_steps=3)
    ref = pipe(**call, generator=torch.Generator().manual_seed(0)).frames
    pipe.to(dtype=torch.bfloat16)
    assert pipe.content_model.dtype == pipe.motion_model.dtype == torch.bfloat16
    out = pipe(**call, generator=torch.Generator().manual_seed(0)).frames
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert abs(out - ref).mean() < 0.02  # bf16 rounding, not a different video

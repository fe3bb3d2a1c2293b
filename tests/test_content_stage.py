"""Content-frame diffusion: a diffusers UNet2DConditionModel on content frames, class CFG,
frame pretraining followed by fine-tuning through `--init` (the same from_pretrained path a
user's pretrained image model takes)."""

import json

import pytest
import torch
from conftest import SMALL_AUTOENCODER, fit_fixed_batch

from cmdvideo.cli import main
from cmdvideo.config import load_config
from cmdvideo.data import build_dataset, collate_videos
from cmdvideo.models.codec import VideoCodec
from cmdvideo.models.content import build_content_unet, content_prediction
from cmdvideo.training.stages import ContentStage, build_codec

SMALL = [
    "data.num_frames=4", "data.height=16", "data.width=16", "data.num_videos=64",
    *SMALL_AUTOENCODER,
    "content.overrides.block_out_channels=[16,32,32]", "content.overrides.norm_num_groups=8",
    "content.overrides.attention_head_dim=8", "content.preview_steps=2",
    "train.batch_size=4", "train.warmup_steps=1", "train.log_every=1", "train.preview_every=0",
]  # fmt: skip


@pytest.fixture
def ae_dir(tmp_path):
    torch.manual_seed(0)
    build_codec(load_config("tiny", SMALL)).save_pretrained(tmp_path / "ae")
    return tmp_path / "ae"


def small_unet(num_classes=3):
    torch.manual_seed(0)
    unet = build_content_unet(
        "tiny", 3, (16, 16), num_classes,
        dict(block_out_channels=(16, 32, 32), norm_num_groups=8, attention_head_dim=8),
    )  # fmt: skip
    return unet.eval()


def test_class_cfg_and_null_class():
    unet = small_unet()
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 500])
    labels = torch.tensor([0, 2])
    cond = content_prediction(unet, x, t, labels)
    uncond = content_prediction(unet, x, t, None)
    dropped = content_prediction(unet, x, t, labels, drop_class=torch.tensor([True, True]))
    torch.testing.assert_close(dropped, uncond)
    guided = content_prediction(unet, x, t, labels, guidance_scale=3.0)
    torch.testing.assert_close(guided, uncond + 3.0 * (cond - uncond), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(guided, cond, atol=1e-5)
    with pytest.raises(ValueError, match=r"class_labels must be in \[0, 2\]"):
        content_prediction(unet, x, t, torch.tensor([0, 3]))


def test_content_loss_falls_on_a_fixed_batch(ae_dir):
    config = load_config("tiny", SMALL)
    data = build_dataset(config.data)
    codec = VideoCodec.from_pretrained(ae_dir)
    stage = ContentStage(config, codec, num_classes=10, captions=data.captions(64))
    assert stage.use_class and stage.use_text and stage.learns_text  # the tiny config
    torch.manual_seed(0)
    batch = collate_videos([data[i] for i in range(4)])
    losses = fit_fixed_batch(stage, batch, steps=40, lr=2e-3)
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5, losses


def _train(ae_dir, out, *extra):
    args = ["train", "content", "--autoencoder", str(ae_dir), "--out", str(out), "--max-steps", "2",
            *extra]  # fmt: skip
    for item in SMALL + ["train.preview_every=2"]:
        args += ["--set", item]
    assert main(args) == 0


def test_frame_pretraining_then_finetune_from_it(ae_dir, tmp_path):
    from diffusers import UNet2DConditionModel

    _train(ae_dir, tmp_path / "frames", "--frames")
    pretrained = UNet2DConditionModel.from_pretrained(tmp_path / "frames" / "content")
    assert load_config(tmp_path / "frames" / "config.yaml").content.target == "frames"
    _train(ae_dir, tmp_path / "finetune", "--init", str(tmp_path / "frames" / "content"))
    finetuned = UNet2DConditionModel.from_pretrained(tmp_path / "finetune" / "content")
    assert finetuned.config.num_class_embeds == pretrained.config.num_class_embeds == 11
    # It started from the pretrained weights (2 small steps later it is close, not equal).
    a, b = pretrained.conv_in.weight, finetuned.conv_in.weight
    assert not torch.equal(a, b) and (a - b).abs().max() < 0.05
    records = [
        json.loads(ln) for ln in (tmp_path / "finetune" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in records if "loss" in r] == [1, 2]
    assert (tmp_path / "finetune" / "previews" / "step-000002.png").is_file()
    assert (tmp_path / "finetune" / "content_scheduler" / "scheduler_config.json").is_file()

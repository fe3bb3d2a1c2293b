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
from cmdvideo.models.content import (
    ContentDiT,
    build_content_dit,
    build_content_unet,
    content_prediction,
)
from cmdvideo.models.text import TextEmbeddings, WordTextEncoder
from cmdvideo.training.diffusion import ContentStage
from cmdvideo.training.stages import build_codec

SMALL = [
    "data.num_frames=4",
    "data.height=16",
    "data.width=16",
    "data.num_videos=64",
    *SMALL_AUTOENCODER,
    "content.overrides.block_out_channels=[16,32,32]",
    "content.overrides.norm_num_groups=8",
    "content.overrides.attention_head_dim=8",
    "content.preview_steps=2",
    "train.batch_size=4",
    "train.warmup_steps=1",
    "train.log_every=1",
    "train.preview_every=0",
]


@pytest.fixture
def ae_dir(tmp_path):
    torch.manual_seed(0)
    build_codec(load_config("tiny", SMALL)).save_pretrained(tmp_path / "ae")
    return tmp_path / "ae"


def small_unet(num_classes=3):
    torch.manual_seed(0)
    unet = build_content_unet(
        "tiny",
        3,
        (16, 16),
        num_classes,
        dict(block_out_channels=(16, 32, 32), norm_num_groups=8, attention_head_dim=8),
    )
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


def test_word_encoder_options_reach_a_fresh_encoder(ae_dir):
    """content.text_encoder_overrides builds the learned word encoder: a larger embedding init
    keeps words apart from the start (shape words stayed nearly equal at the default 0.02)."""
    data = build_dataset(load_config("tiny", SMALL).data)
    codec = VideoCodec.from_pretrained(ae_dir)

    def word_spread(overrides):
        config = load_config("tiny", SMALL + overrides)
        stage = ContentStage(config, codec, num_classes=10, captions=data.captions(64))
        torch.manual_seed(0)
        encoder = stage._new_text_encoder()
        embed = encoder.token_embed.weight[[encoder.word_ids[w] for w in ("circle", "square")]]
        return encoder.config.embed_init_std, (embed[0] - embed[1]).abs().mean().item()

    default = word_spread([])
    wide = word_spread(["content.text_encoder_overrides.embed_init_std=1"])
    assert default[0] == 0.02 and wide[0] == 1.0
    assert wide[1] > 10 * default[1]


def _train(ae_dir, out, *extra):
    args = [
        "train",
        "content",
        "--autoencoder",
        str(ae_dir),
        "--out",
        str(out),
        "--max-steps",
        "2",
        *extra,
    ]
    for item in SMALL + ["train.preview_every=2"]:
        args += ["--set", item]
    assert main(args) == 0


def test_frame_pretraining_then_finetune_from_it(ae_dir, tmp_path):
    from diffusers import UNet2DConditionModel

    _train(ae_dir, tmp_path / "frames", "--frames")
    pretrained = UNet2DConditionModel.from_pretrained(tmp_path / "frames" / "content")
    assert load_config(tmp_path / "frames" / "config.yaml").content.target == "frames"
    _train(ae_dir, tmp_path / "finetune", "--init", str(tmp_path / "frames"))  # the run folder
    finetuned = UNet2DConditionModel.from_pretrained(tmp_path / "finetune" / "content")
    assert finetuned.config.num_class_embeds == pretrained.config.num_class_embeds == 11
    # It started from the pretrained weights (2 small steps later it is close, not equal).
    a, b = pretrained.conv_in.weight, finetuned.conv_in.weight
    assert not torch.equal(a, b) and (a - b).abs().max() < 0.05
    # ... and so did the built-in text encoder learned with it
    a, b = (
        WordTextEncoder.from_pretrained(tmp_path / run / "text_encoder").token_embed.weight
        for run in ("frames", "finetune")
    )
    assert not torch.equal(a, b) and (a - b).abs().max() < 0.05
    records = [
        json.loads(ln) for ln in (tmp_path / "finetune" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in records if "loss" in r] == [1, 2]
    assert (tmp_path / "finetune" / "previews" / "step-000002.png").is_file()
    assert (tmp_path / "finetune" / "content_scheduler" / "scheduler_config.json").is_file()


def test_text_cfg_uses_the_empty_prompt_as_null():
    unet = build_content_unet(
        "tiny",
        3,
        (16, 16),
        0,
        dict(block_out_channels=(16, 32, 32), norm_num_groups=8, attention_head_dim=8),
        text_embed_dim=16,
    ).eval()
    encoder = WordTextEncoder(vocabulary=["red", "circle", "left"], hidden_size=16).eval()
    ids, mask = encoder.tokenize(["red circle", "left"])
    text, null = encoder(ids, mask), encoder(*encoder.tokenize([""]))
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 500])
    with torch.no_grad():
        cond = content_prediction(unet, x, t, text=text, null_text=null)
        uncond = content_prediction(unet, x, t, null_text=null)
        dropped = content_prediction(
            unet, x, t, text=text, null_text=null, drop_text=torch.tensor([True, False])
        )
        guided = content_prediction(unet, x, t, text=text, null_text=null, guidance_scale=5.0)
    torch.testing.assert_close(dropped[0], uncond[0])
    torch.testing.assert_close(dropped[1], cond[1])
    torch.testing.assert_close(guided, uncond + 5.0 * (cond - uncond), atol=1e-4, rtol=1e-4)
    assert (guided - cond).abs().max() > 1e-4
    with pytest.raises(ValueError, match="needs null_text"):
        content_prediction(unet, x, t, text=text)


def test_content_dit_shapes_cfg_and_non_square_frames():
    torch.manual_seed(0)
    dit = build_content_dit(
        "tiny", 3, (16, 24), 5, dict(hidden_size=32, depth=2, num_heads=2), text_embed_dim=8
    )
    with torch.no_grad():  # adaLN-Zero starts at zero: perturb so conditions matter
        for param in dit.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    x, t, labels = torch.randn(2, 3, 16, 24), torch.tensor([3, 700]), torch.tensor([0, 4])
    pooled = TextEmbeddings(torch.randn(2, 4, 8), torch.randn(2, 8))
    cond = content_prediction(dit, x, t, labels, pooled)
    uncond = content_prediction(dit, x, t, None)
    guided = content_prediction(dit, x, t, labels, pooled, guidance_scale=3.0)
    assert cond.shape == x.shape
    torch.testing.assert_close(guided, uncond + 3.0 * (cond - uncond), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="multiples of patch_size"):
        dit(torch.randn(1, 3, 15, 24), t[:1])


def test_content_dit_backbone_trains_through_the_stage(ae_dir):
    config = load_config(
        "tiny",
        [
            *SMALL,
            "content.backbone=dit",
            "content.condition=class",
            "content.overrides.hidden_size=32",
            "content.overrides.depth=2",
            "content.overrides.num_heads=2",
        ],
    )
    config.content.overrides = {
        k: v
        for k, v in config.content.overrides.items()
        if k in ("hidden_size", "depth", "num_heads")
    }
    data = build_dataset(config.data)
    stage = ContentStage(config, VideoCodec.from_pretrained(ae_dir), num_classes=10)
    assert isinstance(stage.model().net, ContentDiT)
    torch.manual_seed(0)
    batch = collate_videos([data[i] for i in range(4)])
    losses = fit_fixed_batch(stage, batch, steps=40, lr=2e-3)
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5, losses


def test_text_unet_keeps_the_preset_width_per_head():
    """With text, the tiny preset's attention blocks become cross-attention blocks, where
    diffusers reads attention_head_dim as a number of heads: the builder converts it so that
    every attention keeps 32 channels per head (not 32 heads of 2 channels)."""
    for text_embed_dim in (0, 16):
        unet = build_content_unet("tiny", 3, (16, 16), num_classes=2, text_embed_dim=text_embed_dim)
        attentions = [m for m in unet.modules() if type(m).__name__ == "Attention"]
        assert attentions
        for attn in attentions:
            assert attn.inner_dim // attn.heads == 32


def test_prompt_in_the_time_embedding_trains_and_reloads(ae_dir, tmp_path):
    """`content.overrides.addition_embed_type=text` (a diffusers UNet option) also feeds an
    attention-pooled prompt into the timestep embedding, so every ResNet block sees it, not only
    the cross-attention levels; it trains through the stage and reloads from the run folder."""
    from cmdvideo.models.content import load_content_model

    out = tmp_path / "pooled"
    _train(
        ae_dir,
        out,
        "--set",
        "content.overrides.addition_embed_type=text",
        "--set",
        "content.overrides.addition_embed_type_num_heads=2",
    )
    unet = load_content_model(out, "content").eval()
    encoder = WordTextEncoder.from_pretrained(out / "text_encoder").eval()
    assert unet.config.addition_embed_type == "text" and unet.add_embedding is not None
    with torch.no_grad():
        text = encoder(*encoder.tokenize(["a red circle moving left", "a red square moving left"]))
        null = encoder(*encoder.tokenize([""]))
        pooled = unet.add_embedding(text.hidden)
        assert (pooled[0] - pooled[1]).abs().max() > 1e-6  # the shape word reaches it
        x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 500])
        first = content_prediction(unet, x, t, torch.tensor([0, 1]), text, null)
        again = content_prediction(
            load_content_model(out, "content").eval(), x, t, torch.tensor([0, 1]), text, null
        )
    torch.testing.assert_close(first, again, rtol=0, atol=0)

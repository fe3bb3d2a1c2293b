"""The content and motion stages encode each caption once with a frozen sentence encoder
(its forward costs ~10x a tiny UNet step): the remembered states must equal a fresh encoding."""

import torch
from conftest import SMALL_AUTOENCODER

from cmdvideo.config import load_config
from cmdvideo.models.text import encode_prompts
from cmdvideo.training.diffusion import ContentStage, MotionStage
from cmdvideo.training.stages import build_codec

SMALL = ["data.num_frames=4", "data.height=16", "data.width=16", *SMALL_AUTOENCODER]


def test_frozen_sentence_encoder_states_are_remembered_per_caption(tiny_sentence_encoder_dir):
    enc = str(tiny_sentence_encoder_dir)
    config = load_config(
        "tiny",
        SMALL
        + [
            f"content.text_encoder={enc}",
            "content.condition=text",
            f"motion.text_encoder={enc}",
            "motion.condition=text",
        ],
    )
    torch.manual_seed(0)
    codec = build_codec(config)
    for stage in (ContentStage(config, codec), MotionStage(config, codec)):
        assert not stage.learns_text and stage._text_memo == {}
        calls = []
        stage.text_encoder.register_forward_hook(lambda *args, calls=calls: calls.append(1))
        prompts = [
            "a red circle moving left",
            "a crimson ball sliding to the left on a navy background",
            "a red circle moving left",
            "blue",
        ]
        text, null = stage._text(stage.text_encoder, prompts, "cpu")
        assert len(calls) == 2 and len(stage._text_memo) == 4  # three captions and ""
        fresh = encode_prompts(stage.text_encoder, stage.tokenizer, prompts, "cpu")
        empty = encode_prompts(stage.text_encoder, stage.tokenizer, [""], "cpu")
        assert torch.equal(text.mask, fresh.mask) and torch.equal(null.mask, empty.mask)
        torch.testing.assert_close(text.pooled, fresh.pooled)
        torch.testing.assert_close(null.pooled, empty.pooled)
        torch.testing.assert_close(
            text.hidden * text.mask[..., None], fresh.hidden * fresh.mask[..., None]
        )
        before = len(calls)
        stage._text(stage.text_encoder, prompts[::-1], "cpu")
        assert len(calls) == before  # all remembered: no forward

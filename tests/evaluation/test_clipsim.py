"""CLIPSIM through a tiny random CLIP saved to a folder and loaded back (a pipeline check, not
a CLIPSIM result); no local CLIP -> a clear message, not a substitute number."""

import pytest
import torch
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPProcessor,
    CLIPTextConfig,
    CLIPTokenizer,
    CLIPVisionConfig,
)

from cmdvideo.evaluation.clipsim import CLIP_ENV, clipsim, load_clip


@pytest.fixture
def tiny_clip_dir(tmp_path, tiny_sd_dir):
    torch.manual_seed(0)
    text = CLIPTextConfig(
        vocab_size=54,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=16,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    config = CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16
    )
    CLIPModel(config).save_pretrained(tmp_path / "clip")
    tokenizer = CLIPTokenizer.from_pretrained(tiny_sd_dir / "tokenizer")
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(tmp_path / "clip")
    return tmp_path / "clip"


def test_clipsim_pipeline_check(tiny_clip_dir, monkeypatch):
    monkeypatch.setenv(CLIP_ENV, str(tiny_clip_dir))
    model, processor = load_clip()
    videos = torch.rand(2, 3, 4, 32, 32) * 2 - 1
    result = clipsim(model, processor, videos, ["a red circle", "a blue square"])
    assert result["num_videos"] == 2 and len(result["per_video"]) == 2
    assert all(-1 <= v <= 1 for v in result["per_video"])
    again = clipsim(model, processor, videos, ["a red circle", "a blue square"])
    assert again["clipsim"] == pytest.approx(result["clipsim"])
    with pytest.raises(ValueError, match="2 videos but 1 prompts"):
        clipsim(model, processor, videos, ["a red circle"])


def test_missing_clip_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv(CLIP_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="local CLIP model folder"):
        load_clip()


def test_eval_clipsim_command_reads_a_sample_folder(tiny_clip_dir, tmp_path, capsys):
    import json

    from cmdvideo.cli import main
    from cmdvideo.data.video_io import write_video

    folder = tmp_path / "samples"
    prompts = ["a red circle moving left on a blue background", "a green square rotating"]
    for i in range(2):
        write_video(folder / f"video-{i:03d}.mp4", torch.rand(3, 4, 32, 32) * 2 - 1, fps=8)
    (folder / "prompts.txt").write_text(
        "".join(f"video-{i:03d}: {p}\n" for i, p in enumerate(prompts))
    )
    assert (
        main(["eval", "clipsim", "--videos", str(folder), "--clip", str(tiny_clip_dir), "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["num_videos"] == 2 and -1 <= result["clipsim"] <= 1
    assert main(["eval", "clipsim", "--videos", str(tmp_path), "--clip", str(tiny_clip_dir)]) == 2
    assert "prompts.txt" in capsys.readouterr().err

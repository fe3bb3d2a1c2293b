"""The pipeline bundled with the package (moving-shapes-tiny) and `cmdvideo demo`."""

import re

import pytest
import torch

from cmdvideo.cli import main
from cmdvideo.data.moving_shapes import MOTIONS
from cmdvideo.pipelines.cmd import BUNDLED_PIPELINES, CMDPipeline


@pytest.fixture(scope="module")
def bundled():
    pipe = CMDPipeline.from_pretrained("moving-shapes-tiny")  # the short name, as users load it
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_bundled_pipeline_is_small_and_generates_deterministically(bundled):
    folder = BUNDLED_PIPELINES["moving-shapes-tiny"]
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 30 * 2**20  # the whole folder, safetensors weights included
    assert not list(folder.rglob("*.bin"))  # weights are safetensors

    def run(seed):
        return bundled(
            prompt="a red circle moving left on a blue background",
            num_inference_steps=3,
            generator=torch.Generator().manual_seed(seed),
            output_type="pt",
        ).frames

    first, again, other = run(0), run(0), run(1)
    assert first.shape == (1, bundled.config.num_frames, 3, *bundled.video_size())
    assert torch.equal(first, again) and not torch.equal(first, other)
    labels = bundled(class_labels=["left", "grow"], num_inference_steps=2, output_type="pt")
    assert labels.frames.shape[0] == 2


def test_missing_bundle_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setitem(BUNDLED_PIPELINES, "moving-shapes-tiny", tmp_path / "gone")
    with pytest.raises(FileNotFoundError, match="make bundle"):
        CMDPipeline.from_pretrained("moving-shapes-tiny")


def test_demo_with_a_prompt_makes_that_video_only(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--out",
            str(out),
            "--steps",
            "2",
            "--prompt",
            "a green circle growing on a black background",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    page = (out / "index.html").read_text()
    files = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert [f for f in files if f.endswith(".gif")] == ["video-000.gif"]  # only the one asked
    assert sorted(p.name for p in out.glob("video-*")) == ["video-000.gif", "video-000.mp4"]
    assert all((out / f).is_file() for f in files)
    assert "a green circle growing on a black background" in page and "seed 0" in page
    printed = capsys.readouterr().out
    assert "seconds per video" in printed and "FLOPs per video: CMD" in printed


def test_eval_generation_scores_the_bundled_pipeline(tmp_path, capsys):
    import json

    code = main(
        [
            "eval",
            "generation",
            "--model",
            "moving-shapes-tiny",
            "--per-class",
            "1",
            "--steps",
            "2",
            "--device",
            "cpu",
            "--guidance-rescale",
            "0.5",
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["num_videos"] == 10 and result["guidance_rescale"] == 0.5
    assert result["class_conditioned"]["num_videos"] == 10
    assert sorted(result["class_conditioned"]["by_class"]) == sorted(MOTIONS)  # one of each
    assert result["fd_moving_shapes"] >= 0 and result["fd_moving_shapes_real_vs_real"] > 0
    assert result["real"]["background_accuracy"] == 1.0  # the checks on real videos: the ceiling
    assert (tmp_path / "eval.json").is_file() and (tmp_path / "class_conditioned.png").is_file()


def test_the_bundle_is_on_the_latent_path_and_animates_a_real_frame(bundled):
    """The bundled pipeline diffuses in its frame VAE's latents (4x8x8 for 32x32 frames); a real
    frame given to image_to_video comes back as the content frame through the VAE, sharp."""
    from cmdvideo.evaluation.generation import held_out_videos

    assert bundled.vae is not None
    assert bundled.content_size() == (8, 8) and bundled.video_size() == (32, 32)
    video = held_out_videos(1, 16, 32, 32)[0]["video"]  # (3, T, H, W) in [-1, 1]
    image = ((video[:, 8].permute(1, 2, 0) + 1) / 2).numpy()  # (H, W, 3) in [0, 1]
    out = bundled.image_to_video(
        image, num_inference_steps=2, generator=torch.Generator().manual_seed(0)
    )
    mse = ((out.content_frames[0] - image) ** 2).mean()
    assert 10 * torch.log10(torch.tensor(1 / mse)) > 25  # dB: the VAE's round trip, not a new frame
    assert out.frames.shape == (1, 16, 32, 32, 3)

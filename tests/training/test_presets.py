"""The paper presets build and train a step on CPU with tiny stand-ins (data, VAE).

They are meant for GPUs and real datasets; here the data is a few synthetic videos and, in
latent mode, a tiny randomly initialised AutoencoderKL saved to disk and loaded back through
the same `from_pretrained` path a user's Stable Diffusion VAE takes.
"""

import json

import pytest
import torch
from conftest import write_test_video

from cmdvideo.cli import main
from cmdvideo.models.codec import VideoCodec


def _train(config, data, out, *overrides):
    args = [
        "train",
        "autoencoder",
        "--config",
        config,
        "--data",
        str(data),
        "--out",
        str(out),
        "--max-steps",
        "1",
    ]
    for item in (
        "train.batch_size=1",
        "train.preview_every=1",
        "train.log_every=1",
        "data.num_workers=0",
        "data.num_frames=4",
        *overrides,
    ):
        args += ["--set", item]
    assert main(args) == 0


def test_ucf101_pixel_preset_runs_a_step(tmp_path):
    for cls in ("Biking", "Diving"):
        for i in range(2):
            write_test_video(
                tmp_path / "UCF-101" / cls / f"v_{cls}_g01_c0{i}.avi", 12, size=(60, 80)
            )
    out = tmp_path / "run"
    # The preset's own architecture (D=384, 8+8 blocks) at its 64x64 resolution, 4 frames.
    _train("ucf101-pixel-64", tmp_path / "UCF-101", out, "train.mixed_precision=no")
    codec = VideoCodec.from_pretrained(out)
    assert codec.autoencoder.config.hidden_size == 384 and not codec.latent_mode
    assert (out / "previews" / "step-000001.png").is_file()


def test_webvid_latent_preset_runs_a_step(tmp_path, tiny_vae_dir):
    rows = []
    for i in range(2):
        write_test_video(tmp_path / f"{i}.mp4", 10, size=(40, 72))
        rows.append({"videoid": str(i), "name": f"clip number {i}"})
    index = tmp_path / "train.jsonl"
    index.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    _train(
        "webvid-latent-512x1024",
        index,
        out,
        f"autoencoder.vae={tiny_vae_dir}",
        "autoencoder.vae_subfolder=null",
        "data.height=32",
        "data.width=64",  # 16x32 latents with the tiny VAE (f=2)
        "autoencoder.overrides.hidden_size=32",
        "autoencoder.overrides.encoder_depth=1",
        "autoencoder.overrides.decoder_depth=1",
        "autoencoder.overrides.num_heads=2",
    )
    codec = VideoCodec.from_pretrained(out)  # autoencoder/ and vae/ from the run folder
    assert codec.latent_mode and codec.frame_vae.scaling_factor == 0.5
    video = torch.rand(1, 3, 4, 32, 64) * 2 - 1
    content, motion = codec.encode(video)
    assert content.shape == (1, 4, 16, 32)  # a VAE latent of one frame
    assert motion.shape == (1, 8, 4, 8 + 16)  # p=2 on 16x32 latents
    assert codec.decode(content, motion).shape == video.shape
    assert codec.content_to_pixels(content).shape == (1, 3, 32, 64)


def _param_count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", ["ucf101-pixel-64", "webvid-latent-512x1024"])
def test_paper_presets_build_full_size_on_meta_device(name):
    """Every model of a paper config at full size, on the meta device (no memory spent)."""
    from cmdvideo.config import load_config
    from cmdvideo.models.autoencoder import CMDAutoencoder, autoencoder_preset
    from cmdvideo.models.content import build_content_dit, build_content_unet, uses_text
    from cmdvideo.models.motion_dit import MotionDiT, motion_dit_preset

    config = load_config(name)
    latent = config.autoencoder.vae is not None
    channels, f = (4, 8) if latent else (3, 1)  # SD VAE: 4 channels, 8x downsampling
    size = (config.data.height // f, config.data.width // f)
    num_classes = 101 if config.content.condition == "class" else 0
    text_dim = 768 if "text" in config.content.condition else 0  # CLIP ViT-L/14
    with torch.device("meta"):
        ae = CMDAutoencoder(**autoencoder_preset(config.autoencoder.preset))
        assert ae.config.in_channels == channels
        build = build_content_dit if config.content.backbone == "dit" else build_content_unet
        content = build(config.content.preset, channels, size, num_classes, None, text_dim)
        motion = MotionDiT(
            **motion_dit_preset(config.motion.preset),
            motion_channels=ae.config.motion_channels,
            content_channels=channels,
            num_classes=num_classes,
            text_embed_dim=text_dim,
        )
    counts = {
        k: _param_count(m) / 1e6
        for k, m in (("autoencoder", ae), ("content", content), ("motion", motion))
    }
    print(name, {k: round(v, 1) for k, v in counts.items()})
    assert ae.device.type == "meta"
    if latent:
        assert uses_text(content) and 850 < counts["content"] < 870  # the SD 1.5 UNet
    else:
        assert 400 < counts["content"] < 500  # DiT-L/2 scale
    assert 50 < counts["motion"] < 500


def test_the_latent_default_recipe_in_miniature(tmp_path, capsys):
    """configs/tiny-latent.yaml (the base of configs/bundle/, `make bundle`), at a size that trains in
    seconds: a frame VAE with per-channel latent statistics, a cache of its latents, the CMD
    autoencoder trained from that cache (the VAE loaded through the path Stable Diffusion's
    takes), a latent cache of (content, motion), both diffusion stages, one pipeline that
    generates pixel videos at the data's size."""
    from cmdvideo.cli import main
    from cmdvideo.pipelines.cmd import CMDPipeline

    small = [
        "data.num_frames=4",
        "data.height=16",
        "data.width=16",
        "vae.preset=moving-shapes-32",
        "vae.frames_per_video=2",
        "train.batch_size=2",
        "train.preview_every=0",
        "autoencoder.overrides.hidden_size=32",
        "autoencoder.overrides.encoder_depth=1",
        "autoencoder.overrides.decoder_depth=1",
        "autoencoder.overrides.num_heads=2",
        "content.overrides.block_out_channels=[16,32,32]",
        "content.overrides.attention_head_dim=8",
        "motion.overrides.hidden_size=32",
        "motion.overrides.depth=1",
        "motion.overrides.num_heads=2",
    ]

    def run(*argv, sets=()):
        for item in [*small, *sets]:
            argv += ("--set", item)
        assert main(["--debug", *argv]) == 0

    vae = tmp_path / "vae"
    run("train", "vae", "--config", "tiny-latent", "--out", str(vae), "--max-steps", "2")
    stats = json.loads((vae / "vae" / "config.json").read_text())
    assert len(stats["latents_mean"]) == len(stats["latents_std"]) == 4
    latent = [f"autoencoder.vae={vae}"]
    run(
        "cache",
        "--frames",
        "--config",
        "tiny-latent",
        "--out",
        str(tmp_path / "frames"),
        "--num-videos",
        "6",
        sets=latent,
    )
    run(
        "train",
        "autoencoder",
        "--config",
        "tiny-latent",
        "--out",
        str(tmp_path / "ae"),
        "--data",
        str(tmp_path / "frames"),
        "--max-steps",
        "2",
        sets=[*latent, "train.preview_every=2"],
    )
    assert (tmp_path / "ae" / "previews" / "step-000002.png").is_file()  # decoded to pixels
    # evaluated on videos, not on the cache it trained from
    ae_eval = ["eval", "autoencoder", "--model", str(tmp_path / "ae"), "--num-videos", "2"]
    assert main(ae_eval) == 2
    assert "--data moving-shapes" in capsys.readouterr().err
    assert main([*ae_eval, "--data", "moving-shapes", "--probe-pairs", "0"]) == 0
    run(
        "cache",
        "--config",
        "tiny-latent",
        "--autoencoder",
        str(tmp_path / "ae"),
        "--out",
        str(tmp_path / "cache"),
        "--num-videos",
        "6",
        sets=latent,
    )
    for stage in ("content", "motion"):
        run(
            "train",
            stage,
            "--config",
            "tiny-latent",
            "--autoencoder",
            str(tmp_path / "ae"),
            "--data",
            str(tmp_path / "cache"),
            "--out",
            str(tmp_path / stage),
            "--max-steps",
            "2",
            sets=[*latent, "train.snapshot_every=1"],
        )
    assert (tmp_path / "content" / "snapshots" / "step-000002" / "content").is_dir()
    assert (
        main(
            [
                "pipeline",
                "assemble",
                "--autoencoder",
                str(tmp_path / "ae"),
                "--content",
                str(tmp_path / "content"),
                "--motion",
                str(tmp_path / "motion"),
                "--out",
                str(tmp_path / "pipe"),
            ]
        )
        == 0
    )
    pipe = CMDPipeline.from_pretrained(tmp_path / "pipe")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.content_size() == (4, 4) and pipe.video_size() == (16, 16)  # 4x4 latents, f=4
    out = pipe(prompt="a red circle moving left on a blue background", num_inference_steps=2)
    assert out.frames.shape == (1, 4, 16, 16, 3)

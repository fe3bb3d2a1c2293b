"""Training the motion DiT on a frozen autoencoder, through the shared trainer and the CLI."""

import json

import pytest
import torch
from conftest import SMALL_AUTOENCODER, fit_fixed_batch
from diffusers import DDIMScheduler

from cmdvideo.cli import main
from cmdvideo.config import load_config
from cmdvideo.data import batch_source, build_dataset, collate_videos
from cmdvideo.models.codec import VideoCodec
from cmdvideo.models.motion_dit import MotionDiT
from cmdvideo.pipelines.denoise import denoise
from cmdvideo.training.diffusion import ContentStage, MotionStage
from cmdvideo.training.losses import diffusion_loss
from cmdvideo.training.stages import build_codec

SMALL = [
    "data.num_frames=8",
    "data.height=16",
    "data.width=16",
    "data.num_videos=64",
    *SMALL_AUTOENCODER,
    "motion.overrides.hidden_size=32",
    "motion.overrides.depth=2",
    "motion.overrides.num_heads=2",
    "train.batch_size=4",
    "train.warmup_steps=1",
    "train.log_every=1",
    "train.preview_every=0",
    "motion.preview_steps=2",
]


@pytest.fixture
def small_setup(tmp_path):
    config = load_config("tiny", SMALL)
    torch.manual_seed(0)
    codec = build_codec(config)
    codec.save_pretrained(tmp_path / "ae")
    return config, tmp_path / "ae"


def test_motion_loss_falls_on_a_fixed_batch(small_setup):
    config, ae_dir = small_setup
    data = build_dataset(config.data)
    codec = VideoCodec.from_pretrained(ae_dir)
    stage = MotionStage(config, codec, num_classes=10, captions=data.captions(64))
    assert stage.use_class and stage.use_text and stage.learns_text  # the tiny config
    torch.manual_seed(0)
    batch = collate_videos([data[i] for i in range(4)])
    losses = fit_fixed_batch(stage, batch, steps=60, lr=3e-3)
    assert sum(losses[-6:]) / 6 < 0.5 * sum(losses[:6]) / 6, losses


def test_v_prediction_target_is_velocity():
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(prediction_type="v_prediction")
    clean = torch.randn(3, 4, 8, 8)
    torch.manual_seed(0)  # diffusion_loss draws noise, then timesteps, from the global RNG
    noise = torch.randn(clean.shape)
    t = torch.randint(0, 1000, (3,))
    velocity = scheduler.get_velocity(clean, noise, t)
    torch.manual_seed(0)
    loss = diffusion_loss(lambda x, tt: velocity, clean, scheduler, "v_prediction")
    assert loss.item() == pytest.approx(0.0, abs=1e-10)
    torch.manual_seed(0)
    assert diffusion_loss(lambda x, tt: noise, clean, scheduler, "epsilon").item() == 0.0
    with pytest.raises(ValueError):
        diffusion_loss(lambda x, tt: x, clean, scheduler, "x0")


def test_timestep_range_limits_the_training_timesteps(small_setup):
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler()
    seen = []

    def record(noisy, t):
        seen.append(t.clone())
        return torch.zeros_like(noisy)

    clean = torch.randn(256, 2)
    diffusion_loss(record, clean, scheduler, "epsilon", timestep_range=(200, 700))
    diffusion_loss(record, clean, scheduler, "epsilon")
    banded, full = seen
    assert banded.min() >= 200 and banded.max() < 700 and banded.float().std() > 50
    assert full.min() < 200 and full.max() >= 700  # None: every timestep
    for bad in [(700, 200), (0, 1001), (-1, 10), (5,)]:
        with pytest.raises(ValueError, match="timestep_range"):
            diffusion_loss(record, clean, scheduler, "epsilon", timestep_range=bad)
    # from the config, checked when the stage is built (not at the first step)
    config, ae_dir = small_setup
    codec = VideoCodec.from_pretrained(ae_dir)
    for section in ("motion", "content"):
        bad = load_config("tiny", SMALL + [f"{section}.timestep_range=[500,100]"])
        with pytest.raises(ValueError, match=rf"{section}\.timestep_range"):
            (MotionStage if section == "motion" else ContentStage)(bad, codec, 10, captions=["a"])
    stage = MotionStage(
        load_config("tiny", SMALL + ["motion.timestep_range=[200,700]"]),
        codec,
        10,
        captions=["a red circle"],
    )
    seen.clear()
    stage._loss(record, torch.randn(64, 2))  # what the stage's loss calls
    assert seen[0].min() >= 200 and seen[0].max() < 700


def test_denoise_is_seeded_and_scheduler_agnostic():
    model = MotionDiT(motion_channels=4, hidden_size=32, depth=1, num_heads=2).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    content = torch.rand(2, 3, 16, 16)

    def run(seed, scheduler):
        g = torch.Generator().manual_seed(seed)
        return denoise(
            lambda x, t: model(x, t, content), (2, 4, 8, 8), scheduler, 3, g, progress=False
        )

    ddim = DDIMScheduler()
    a, b, c = run(0, ddim), run(0, ddim), run(1, ddim)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    from diffusers import DPMSolverMultistepScheduler

    assert run(0, DPMSolverMultistepScheduler()).shape == (2, 4, 8, 8)
    with pytest.raises(ValueError, match="num_inference_steps"):
        denoise(lambda x, t: x, (1, 1), ddim, 0, progress=False)


def test_train_motion_command(small_setup, tmp_path, capsys):
    config, ae_dir = small_setup
    out = tmp_path / "motion-run"
    args = ["train", "motion", "--autoencoder", str(ae_dir), "--out", str(out), "--max-steps", "3"]
    for item in SMALL + ["train.preview_every=3"]:
        args += ["--set", item]
    assert main(args) == 0
    model = MotionDiT.from_pretrained(out / "motion")
    assert model.config.num_classes == 10 and model.config.motion_channels == 4
    assert (out / "motion_scheduler" / "scheduler_config.json").is_file()
    assert (out / "previews" / "step-000003.png").is_file()
    records = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
    assert any("preview/psnr_sampled_motion" in r for r in records)


def test_class_condition_needs_labels(small_setup):
    config, ae_dir = small_setup
    with pytest.raises(ValueError, match="no class labels"):
        MotionStage(config, VideoCodec.from_pretrained(ae_dir), num_classes=0)


def test_latent_cache_gives_the_same_pairs_and_trains(small_setup, tmp_path):
    from cmdvideo.data.latent_cache import LatentCache

    config, ae_dir = small_setup
    cache = tmp_path / "cache"
    args = [
        "cache",
        "--autoencoder",
        str(ae_dir),
        "--out",
        str(cache),
        "--num-videos",
        "10",
        "--batch-size",
        "4",
    ]
    for item in SMALL:
        args += ["--set", item]
    assert main(args) == 0
    cached = LatentCache(cache)
    assert len(cached) == 10 and cached.classes[0] == "left"
    data = build_dataset(config.data)
    codec = VideoCodec.from_pretrained(ae_dir)
    content, motion = codec.encode(collate_videos([data[i] for i in range(3)])["video"])
    batch = collate_videos([cached[i] for i in range(3)])
    assert batch_source(batch) == "latents" and batch_source(data[0]) == "videos"
    assert cached.world == data.world == "upright" and cached.part == "all"
    torch.testing.assert_close(batch["content"], content, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batch["motion"], motion, atol=1e-5, rtol=1e-5)
    assert batch["caption"][0] == data[0]["caption"] and batch["label"][0] == data[0]["label"]
    out = tmp_path / "motion"
    args = [
        "train",
        "motion",
        "--autoencoder",
        str(ae_dir),
        "--data",
        str(cache),
        "--out",
        str(out),
        "--max-steps",
        "2",
    ]
    for item in [*SMALL, "train.preview_every=2"]:
        args += ["--set", item]
    assert main(args) == 0
    assert (out / "motion" / "config.json").is_file()
    assert (out / "previews" / "step-000002.png").is_file()


def test_a_batch_of_no_known_source_is_refused():
    with pytest.raises(ValueError, match="neither videos, frames nor latents"):
        batch_source({"label": torch.zeros(2), "caption": ["a", "b"]})


def test_pixel_content_frames_are_clipped_motion_latents_never(small_setup):
    """DDIM's clipping keeps the ε of the unclipped v-prediction: under CFG it reversed the
    bundled motion (experiments/upright-world), so motion samplers do not clip."""
    config, ae_dir = small_setup
    codec = VideoCodec.from_pretrained(ae_dir)
    motion = MotionStage(config, codec, num_classes=10, captions=["a red circle"])
    assert not motion.scheduler.config.clip_sample
    from cmdvideo.training.diffusion import ContentStage

    content = ContentStage(config, codec, num_classes=10, captions=["a red circle"])
    assert content.scheduler.config.clip_sample and content.scheduler.config.clip_sample_range == 1

"""CMDPipeline: assembled from the three training runs (through the CLI, as a user would),
saved and loaded offline, seeded, with class/text conditioning, CFG and swappable schedulers;
and the paper's latent-mode setting with Stable-Diffusion-style parts loaded from a folder."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import SMALL_AUTOENCODER

from cmdvideo.cli import main
from cmdvideo.pipelines.cmd import CMDPipeline

SMALL = [
    "data.num_frames=8",
    "data.height=16",
    "data.width=16",
    "data.num_videos=64",
    *SMALL_AUTOENCODER,
    "content.overrides.block_out_channels=[16,32,32]",
    "content.overrides.attention_head_dim=8",
    "motion.overrides.hidden_size=32",
    "motion.overrides.depth=2",
    "motion.overrides.num_heads=2",
    "train.batch_size=4",
    "train.warmup_steps=1",
    "train.preview_every=0",
    "train.checkpoint_every=100",
]
PROMPTS = ["a red circle moving left on a blue background", "a green square rotating"]


def _cli(*args, overrides=SMALL):
    argv = list(args)
    for item in overrides:
        argv += ["--set", item]
    assert main(argv) == 0


def _train_all(root, stage_args=(), extra=(), content_args=(), steps="2"):
    """Autoencoder, content and motion runs of ``steps`` steps each; returns their folders."""
    overrides = [*SMALL, *extra]
    _cli(
        "train", "autoencoder", "--out", str(root / "ae"), "--max-steps", steps, overrides=overrides
    )
    for stage in ("content", "motion"):
        more = content_args if stage == "content" else ()
        _cli(
            "train",
            stage,
            "--autoencoder",
            str(root / "ae"),
            "--out",
            str(root / stage),
            "--max-steps",
            steps,
            *stage_args,
            *more,
            overrides=overrides,
        )
    return root / "ae", root / "content", root / "motion"


def _pipeline_dir(root, **train):
    """``_train_all`` then `cmdvideo pipeline assemble`: the pipeline folder ROOT/pipe."""
    ae, content, motion = _train_all(root, **train)
    assert (
        main(
            [
                "pipeline",
                "assemble",
                "--autoencoder",
                str(ae),
                "--content",
                str(content),
                "--motion",
                str(motion),
                "--out",
                str(root / "pipe"),
            ]
        )
        == 0
    )
    return root / "pipe"


def _trained_pipeline(root, **train) -> CMDPipeline:
    """:func:`_pipeline_dir`, loaded."""
    pipe = CMDPipeline.from_pretrained(_pipeline_dir(root, **train))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def pipe_dir(tmp_path_factory):
    return _pipeline_dir(tmp_path_factory.mktemp("pipeline"))


@pytest.fixture(scope="module")
def pipe(pipe_dir):
    pipe = CMDPipeline.from_pretrained(pipe_dir)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _run(pipe, seed=0, **kwargs):
    kwargs = {"prompt": PROMPTS, "class_labels": ["left", 6], "num_inference_steps": 3, **kwargs}
    return pipe(generator=torch.Generator().manual_seed(seed), **kwargs)


def test_folder_layout_and_components(pipe_dir, pipe):
    index = json.loads((pipe_dir / "model_index.json").read_text())
    assert index["_class_name"] == "CMDPipeline"
    assert index["class_names"][0] == "left" and index["num_frames"] == 8
    # the built-in text encoder was learned by each stage: two of them, no tokenizer
    assert index["text_encoder"][1] == index["motion_text_encoder"][1] == "WordTextEncoder"
    assert list(pipe_dir.glob("*/*.safetensors")) and not list(pipe_dir.glob("*/*.bin"))
    assert type(pipe.content_scheduler).__name__ == "DDIMScheduler"
    assert pipe.autoencoder.config.motion_scaling_factor > 0


def test_output_types_and_shapes(pipe):
    out = _run(pipe)
    assert out.frames.shape == (2, 8, 16, 16, 3) and out.frames.dtype == np.float32
    assert out.content_frames.shape == (2, 16, 16, 3)
    assert 0 <= out.frames.min() and out.frames.max() <= 1
    pt = _run(pipe, output_type="pt")
    assert pt.frames.shape == (2, 8, 3, 16, 16)
    torch.testing.assert_close(pt.frames.permute(0, 1, 3, 4, 2).numpy(), out.frames)
    pil = _run(pipe, output_type="pil")
    assert len(pil.frames) == 2 and len(pil.frames[0]) == 8 and pil.frames[0][0].size == (16, 16)
    many = _run(pipe, prompt=None, class_labels=[1, 2], num_videos_per_prompt=3)
    assert many.frames.shape[0] == 6
    assert _run(pipe, prompt="one prompt", class_labels=None).frames.shape[0] == 1
    assert _run(pipe, prompt=None, class_labels=None).frames.shape[0] == 1  # unconditional
    assert _run(pipe, num_frames=4).frames.shape[1] == 4


def test_same_seed_same_video_other_seed_other_video(pipe):
    a, b, c = _run(pipe, 0), _run(pipe, 0), _run(pipe, 1)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert np.abs(a.frames - c.frames).max() > 1e-3


def test_same_seed_same_video_across_processes(pipe_dir, pipe, tmp_path):
    script = (  # the same thread count: float sums are ordered by the threads
        f"import sys, numpy as np, torch; torch.set_num_threads({torch.get_num_threads()})\n"
        "from cmdvideo import CMDPipeline\n"
        "pipe = CMDPipeline.from_pretrained(sys.argv[1])\n"
        "pipe.set_progress_bar_config(disable=True)\n"
        f"out = pipe(prompt={PROMPTS!r}, class_labels=['left', 6], num_inference_steps=3,\n"
        "           generator=torch.Generator().manual_seed(0))\n"
        "np.save(sys.argv[2], out.frames)\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(pipe_dir), str(tmp_path / "v.npy")], check=True
    )
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), _run(pipe, 0).frames)


def test_save_load_round_trip_gives_identical_video(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "again")
    again = CMDPipeline.from_pretrained(tmp_path / "again")
    again.set_progress_bar_config(disable=True)
    np.testing.assert_array_equal(_run(again).frames, _run(pipe).frames)


def test_guidance_changes_the_output(pipe_dir):
    # After one optimizer step the adaLN-Zero paths that carry the condition are still exactly
    # zero, so conditional == unconditional; perturb the weights (a stand-in for training) so
    # that guidance has something to amplify, then it must move the result in each stage.
    pipe = CMDPipeline.from_pretrained(pipe_dir)
    pipe.set_progress_bar_config(disable=True)
    torch.manual_seed(0)
    with torch.no_grad():
        for model in (pipe.content_model, pipe.motion_model):
            for param in model.parameters():
                param.add_(torch.randn_like(param) * 0.02)
    base = _run(pipe, guidance_scale=1.0).frames
    for kwargs in (
        {"guidance_scale": 6.0},
        {"content_guidance_scale": 6.0},
        {"motion_guidance_scale": 6.0},
    ):
        guided = _run(pipe, **{"guidance_scale": 1.0, **kwargs}).frames
        assert np.abs(guided - base).max() > 1e-6, kwargs


def test_schedulers_are_swappable(pipe):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler

    outputs, kept = [], (pipe.content_scheduler, pipe.motion_scheduler)
    for cls in (DPMSolverMultistepScheduler, DDIMScheduler, UniPCMultistepScheduler):
        steps = []
        for stage in ("content", "motion"):
            scheduler = cls.from_config(getattr(pipe, f"{stage}_scheduler").config)
            original = scheduler.step
            scheduler.step = lambda *a, _o=original, _s=stage, _n=steps, **k: (
                _n.append(_s) or _o(*a, **k)
            )
            setattr(pipe, f"{stage}_scheduler", scheduler)
        out = _run(pipe, num_inference_steps=2)
        assert np.isfinite(out.frames).all()
        assert steps == ["content"] * 2 + ["motion"] * 2  # the swapped schedulers ran
        outputs.append(out.frames)
    assert not np.allclose(outputs[0], outputs[1])  # and they sample differently
    assert not np.allclose(outputs[2], outputs[1])  # UniPC, whose step takes no generator
    pipe.content_scheduler, pipe.motion_scheduler = kept


@pytest.mark.slow
def test_compiled_pipeline_makes_the_same_videos(pipe_dir):
    compiled = CMDPipeline.from_pretrained(pipe_dir)
    compiled.set_progress_bar_config(disable=True)
    eager = _run(compiled, num_inference_steps=2).frames
    assert compiled.compile() is compiled
    assert all(
        m._compiled_call_impl is not None for m in (compiled.content_model, compiled.motion_model)
    )
    out = _run(compiled, num_inference_steps=2).frames
    np.testing.assert_allclose(out, eager, atol=1e-4)


def test_bad_requests_are_clear_errors(pipe):
    with pytest.raises(ValueError, match="unknown class 'jump'"):
        _run(pipe, class_labels="jump")
    with pytest.raises(ValueError, match="out of range"):
        _run(pipe, class_labels=10)
    with pytest.raises(ValueError, match="output_type"):
        _run(pipe, output_type="gif")
    with pytest.raises(ValueError, match="3 class labels"):
        _run(pipe, class_labels=[1, 2, 3])


def test_sample_command_writes_videos_and_grid(pipe_dir, tmp_path, capsys):
    out = tmp_path / "samples"
    assert (
        main(
            [
                "sample",
                "--model",
                str(pipe_dir),
                "--prompt",
                PROMPTS[0],
                "--class",
                "left",
                "--num-videos",
                "2",
                "--steps",
                "2",
                "--sampler",
                "dpm",
                "--quiet",
                "--guidance",
                "3",
                "--guidance-rescale",
                "0.7",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    for i in range(2):
        assert (out / f"video-{i:03d}.mp4").stat().st_size > 0
        assert (out / f"video-{i:03d}.gif").stat().st_size > 0
    assert (out / "grid.png").is_file()
    assert "s per video" in capsys.readouterr().out
    assert main(["sample", "--model", str(pipe_dir), "--out", str(out)]) == 2  # nothing asked


def test_class_only_pipeline_rejects_prompts(tmp_path):
    extra = ["content.condition=class", "motion.condition=class"]
    ae, content, motion = _train_all(tmp_path, extra=extra)
    from cmdvideo.pipelines.assemble import assemble_pipeline

    pipe = assemble_pipeline(ae, content, motion)
    assert pipe.text_encoder is None and pipe.motion_text_encoder is None
    with pytest.raises(ValueError, match="no text conditioning"):
        pipe(prompt="a red circle", num_inference_steps=1)
    pipe.save_pretrained(tmp_path / "pipe")
    spec = _same_spec(pipe, tmp_path / "pipe")
    assert not spec.accepts_text and spec.num_classes == 10
    # the command line refuses it from the folder's config files, under its flags
    assert main(["sample", "--model", str(tmp_path / "pipe"), "--prompt", "a red circle"]) == 2


def _same_spec(pipe, folder):
    """What the command line reads from the folder's JSON files is what the loaded pipeline
    accepts (so a check before loading refuses exactly what the pipeline would)."""
    from cmdvideo.pipelines.arguments import PipelineSpec

    spec = PipelineSpec.from_folder(folder)
    assert spec == PipelineSpec.from_pipeline(pipe)
    return spec


def test_what_a_folder_accepts_is_read_without_weights(pipe_dir, pipe):
    spec = _same_spec(pipe, pipe_dir)
    assert spec.accepts_text and spec.num_classes == 10 and spec.clip_frames == 8
    assert spec.class_names[0] == "left" and spec.max_steps == 1000
    _same_spec(CMDPipeline.from_pretrained("moving-shapes-tiny"), "moving-shapes-tiny")
    (pipe_dir.parent / "broken").mkdir()
    (pipe_dir.parent / "broken" / "model_index.json").write_text("{not json")
    from cmdvideo.pipelines.arguments import PipelineSpec

    with pytest.raises(ValueError, match="model_index.json: not valid JSON"):
        PipelineSpec.from_folder(pipe_dir.parent / "broken")


def test_latent_mode_with_stable_diffusion_style_parts(tmp_path, tiny_sd_dir):
    """The paper's text-to-video setting in miniature: frames through a (tiny) SD VAE, the
    content model initialised from an SD-style UNet folder (no new parameters), text from a
    CLIP text model + tokenizer loaded from the same folder, frozen and shared by both stages."""
    sd = str(tiny_sd_dir)
    extra = [
        f"autoencoder.vae={sd}",
        "autoencoder.vae_subfolder=vae",
        "autoencoder.overrides.patch_size=2",
        "content.condition=text",
        "motion.condition=text",
        "content.init_subfolder=unet",
    ]
    pipe = _trained_pipeline(
        tmp_path,
        stage_args=["--text-encoder", sd],
        extra=extra,
        content_args=["--init", sd],
        steps="1",
    )
    assert type(pipe.text_encoder).__name__ == "CLIPTextModel" and pipe.tokenizer is not None
    assert type(pipe.vae).__name__ == "AutoencoderKL" and pipe.motion_text_encoder is None
    assert pipe.content_model.config.in_channels == 4  # works on VAE latents
    out = pipe(
        prompt="a red circle", num_inference_steps=2, generator=torch.Generator().manual_seed(0)
    )
    assert out.frames.shape == (1, 8, 16, 16, 3)


def test_stable_diffusion_schedule_and_the_data_aspect(tmp_path, tiny_sd_dir):
    """Fine-tuning from an SD folder trains and samples on SD's own schedule (its scheduler/
    config, not our defaults); the motion stage keeps ours; content frames have the training
    data's size and aspect (16x32 pixels: 8x16 latents), not the UNet config's square
    sample_size (8)."""
    from conftest import SD_SCHEDULER

    sd = str(tiny_sd_dir)
    extra = [
        f"autoencoder.vae={sd}",
        "autoencoder.vae_subfolder=vae",
        "data.width=32",
        "autoencoder.overrides.patch_size=2",
        "content.condition=text",
        "motion.condition=text",
        "content.init_subfolder=unet",
    ]
    pipe = _trained_pipeline(
        tmp_path,
        stage_args=["--text-encoder", sd],
        extra=extra,
        content_args=["--init", sd],
        steps="1",
    )
    keys = (
        "beta_start",
        "beta_end",
        "beta_schedule",
        "prediction_type",
        "set_alpha_to_one",
        "steps_offset",
        "timestep_spacing",
    )
    assert {k: pipe.content_scheduler.config[k] for k in keys} == {k: SD_SCHEDULER[k] for k in keys}
    assert type(pipe.content_scheduler).__name__ == "DDIMScheduler"
    assert pipe.motion_scheduler.config.beta_schedule == "linear"  # trained from scratch: ours
    assert not pipe.motion_scheduler.config.clip_sample  # CFG with clipping reversed motion
    assert pipe.content_size() == (8, 16) and pipe.video_size() == (16, 32)
    _same_spec(pipe, tmp_path / "pipe")  # a UNet with cross-attention, SD's schedule
    out = pipe(
        prompt="a red circle", num_inference_steps=2, generator=torch.Generator().manual_seed(0)
    )
    assert out.frames.shape == (1, 8, 16, 32, 3)


def test_the_config_overrides_the_pretrained_schedule_on_purpose(tiny_sd_dir):
    from cmdvideo.config import load_config
    from cmdvideo.training.diffusion import ContentStage
    from cmdvideo.training.stages import build_codec

    sd = str(tiny_sd_dir)
    sets = [
        *SMALL,
        f"autoencoder.vae={sd}",
        "autoencoder.vae_subfolder=vae",
        "autoencoder.overrides.patch_size=2",
        "content.condition=none",
        f"content.init={sd}",
        "content.init_subfolder=unet",
        "content.prediction_type=epsilon",
    ]
    config = load_config("tiny", sets)
    stage = ContentStage(config, build_codec(config))
    assert stage.schedule["prediction_type"] == "epsilon"  # set on purpose
    assert stage.schedule_source["prediction_type"] == "config"
    assert stage.schedule["beta_schedule"] == "scaled_linear"  # from the SD folder
    assert stage.schedule_source["beta_schedule"] == "init"
    assert stage.scheduler.config.beta_start == 0.00085  # the training loss uses it too


def test_default_guidance_lives_in_the_pipeline_config(pipe_dir, tmp_path):
    """`pipeline assemble --content-guidance/--motion-guidance/--guidance-rescale` store the
    defaults in model_index.json; a call without guidance uses them, explicit arguments override
    them; a folder written before guidance_rescale existed gets 0 (plain CFG)."""
    ae, content, motion = (pipe_dir.parent / name for name in ("ae", "content", "motion"))
    out = tmp_path / "pipe"
    assert (
        main(
            [
                "pipeline",
                "assemble",
                "--autoencoder",
                str(ae),
                "--content",
                str(content),
                "--motion",
                str(motion),
                "--out",
                str(out),
                "--content-guidance",
                "1.5",
                "--motion-guidance",
                "3",
                "--guidance-rescale",
                "0.7",
            ]
        )
        == 0
    )
    pipe = CMDPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.guidance_scales() == (1.5, 3.0)
    assert pipe.default_rescale() == 0.7 and pipe.default_rescale(0.0) == 0.0
    assert CMDPipeline.from_pretrained(pipe_dir).default_rescale() == 0.0
    assert pipe.guidance_scales(2.0) == (2.0, 2.0)
    assert pipe.guidance_scales(2.0, motion_guidance_scale=5.0) == (2.0, 5.0)
    with torch.no_grad():  # give guidance something to amplify (see the test above)
        for model in (pipe.content_model, pipe.motion_model):
            for param in model.parameters():
                param.add_(torch.randn_like(param) * 0.02)
    default = _run(pipe).frames
    explicit = _run(
        pipe, content_guidance_scale=1.5, motion_guidance_scale=3.0, guidance_rescale=0.7
    ).frames
    other = _run(pipe, guidance_scale=4.0).frames
    plain_cfg = _run(pipe, guidance_rescale=0.0).frames
    assert np.array_equal(default, explicit) and not np.array_equal(default, other)
    assert not np.array_equal(default, plain_cfg)


def test_assemble_refuses_defaults_out_of_the_shared_bounds(pipe_dir, tmp_path, capsys):
    """The defaults a pipeline stores have the bounds a call has (one table), under this
    verb's flags."""
    ae, content, motion = (pipe_dir.parent / name for name in ("ae", "content", "motion"))
    base = [
        "pipeline",
        "assemble",
        "--autoencoder",
        str(ae),
        "--content",
        str(content),
        "--motion",
        str(motion),
        "--out",
        str(tmp_path / "p"),
    ]
    for flags, message in (
        (["--motion-guidance", "31"], "--motion-guidance must be a number in [0, 30], got 31.0"),
        (["--steps", "1001"], "--steps must be an integer in [1, 1000], got 1001"),
        (["--guidance-rescale", "2"], "--guidance-rescale must be a number in [0, 1], got 2.0"),
    ):
        assert main(base + flags) == 2
        assert message in capsys.readouterr().err


def test_default_steps_live_in_the_pipeline_config(pipe_dir, tmp_path):
    """`pipeline assemble --steps` stores the default denoising steps; a call without
    num_inference_steps uses them, an explicit value overrides them; older folders get 50."""
    ae, content, motion = (pipe_dir.parent / name for name in ("ae", "content", "motion"))
    out = tmp_path / "pipe"
    assert (
        main(
            [
                "pipeline",
                "assemble",
                "--autoencoder",
                str(ae),
                "--content",
                str(content),
                "--motion",
                str(motion),
                "--out",
                str(out),
                "--steps",
                "3",
            ]
        )
        == 0
    )
    assert json.loads((out / "model_index.json").read_text())["num_inference_steps"] == 3
    pipe = CMDPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.default_steps() == 3 and pipe.default_steps(7) == 7
    default = _run(pipe, num_inference_steps=None).frames
    assert np.array_equal(default, _run(pipe, num_inference_steps=3).frames)
    assert not np.array_equal(default, _run(pipe, num_inference_steps=2).frames)
    pipe.register_to_config(num_inference_steps=None)  # a folder written before the option
    assert pipe.default_steps() == 50


def test_a_frozen_sentence_encoder_conditions_both_stages(tmp_path, tiny_sentence_encoder_dir):
    """`--text-encoder` with a BERT-family sentence encoder folder (all-MiniLM-L6-v2's layout):
    frozen, token states + mask for the UNet's cross-attention, the pooled mean for the motion
    DiT; the pipeline keeps it (and its tokenizer) and samples."""
    enc = str(tiny_sentence_encoder_dir)
    pipe = _trained_pipeline(
        tmp_path,
        stage_args=["--text-encoder", enc],
        steps="1",
        extra=["content.condition=text", "motion.condition=text"],
    )
    assert type(pipe.text_encoder).__name__ == "BertModel" and pipe.motion_text_encoder is None
    embeddings = pipe.encode_prompt(["a crimson ball sliding to the left"])
    assert embeddings.content.mask is not None and embeddings.motion_pooled.shape == (1, 32)
    out = pipe(
        prompt="a crimson ball sliding to the left",
        num_inference_steps=2,
        guidance_scale=2.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert out.frames.shape == (1, 8, 16, 16, 3)


def test_the_sampler_is_a_pipeline_default(pipe_dir, tmp_path, capsys):
    """`pipeline assemble --sampler dpm` stores DPM-Solver++ as the pipeline's sampler; a call
    or `cmdvideo sample` without a sampler uses it, `--sampler` (or its old name `--scheduler`)
    overrides it."""
    ae, content, motion = (pipe_dir.parent / name for name in ("ae", "content", "motion"))
    out = tmp_path / "pipe"
    assert (
        main(
            [
                "pipeline",
                "assemble",
                "--autoencoder",
                str(ae),
                "--content",
                str(content),
                "--motion",
                str(motion),
                "--out",
                str(out),
                "--sampler",
                "dpm",
                "--steps",
                "3",
                "--timestep-spacing",
                "trailing",
            ]
        )
        == 0
    )
    pipe = CMDPipeline.from_pretrained(out)
    pipe.content_scheduler.set_timesteps(3)
    assert pipe.content_scheduler.config.timestep_spacing == "trailing"
    assert pipe.content_scheduler.timesteps[0] == 999  # trailing starts at the last timestep
    with pytest.raises(ValueError, match="timestep_spacing must be one of"):
        pipe.set_sampler("dpm", "uniform")
    assert (
        pipe.sampler_name() == "dpm"
        and CMDPipeline.from_pretrained(pipe_dir).sampler_name() == "ddim"
    )
    assert type(pipe.motion_scheduler).__name__ == "DPMSolverMultistepScheduler"
    capsys.readouterr()
    cases = (([], "3 dpm steps"), (["--sampler", "ddim"], "3 ddim steps"))
    for flags, used in (*cases, (["--scheduler", "euler"], "3 euler steps")):
        assert (
            main(
                [
                    "sample",
                    "--model",
                    str(out),
                    "--prompt",
                    PROMPTS[0],
                    "--quiet",
                    "--out",
                    str(tmp_path / used.replace(" ", "-")),
                    *flags,
                ]
            )
            == 0
        )
        assert used in capsys.readouterr().out

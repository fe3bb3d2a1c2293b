"""`cmdvideo bench`: FLOPs counted on the meta device at paper scale, the accounting checked
against what the pipeline really runs, the tiny measured path and its report files."""

import json

import pytest
import torch
from conftest import SMALL_AUTOENCODER

from cmdvideo.benchmarks import efficiency as eff
from cmdvideo.benchmarks import flops
from cmdvideo.benchmarks.tiny import cmd_pipeline, tiny_setting
from cmdvideo.cli import main

# A small tiny config: 8 frames at 16x16, narrow models (seconds on a CPU).
SMALL = [
    "data.num_frames=8",
    "data.height=16",
    "data.width=16",
    *SMALL_AUTOENCODER,
    "content.overrides.block_out_channels=[16,32,32]",
    "content.overrides.attention_head_dim=8",
    "motion.overrides.hidden_size=32",
    "motion.overrides.depth=2",
    "motion.overrides.num_heads=2",
]


@pytest.fixture(autouse=True)
def one_thread():
    """Small ops on one thread: on a busy 2-core machine, two threads mostly wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_count_flops_counts_linear_layers_and_attention():
    linear, x = torch.nn.Linear(8, 4), torch.randn(3, 8)
    assert flops.count_flops(lambda: linear(x)) == flops.FlopCount(2 * 3 * 8 * 4, 0)
    q = torch.randn(1, 2, 5, 4)  # (B, heads, N, d)
    count = flops.count_flops(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q))
    assert count.flops == count.attention_flops == 2 * (2 * 2 * 5 * 5 * 4)  # QKᵀ and AV


def test_paper_scale_cmd_is_at_least_15x_cheaper_than_the_baselines():
    paper = flops.paper_scale_flops(50)
    m = paper["methods"]
    cmd = m["cmd"]["flops_per_video"]
    assert cmd > 0
    for key in ("unet3d", "video_dit"):
        assert m[key]["flops_per_video"] / cmd >= 15, key
        assert (
            m[key]["macs_without_attention_per_video"]
            / m["cmd"]["macs_without_attention_per_video"]
            >= 15
        )
    # the paper's models at full size: SD 1.5's UNet, ModelScope's 1.41 B UNet
    assert m["cmd"]["components"][0]["params_m"] == pytest.approx(859.5, abs=0.1)
    assert m["unet3d"]["params_m"] == pytest.approx(1411.2, abs=0.1)
    # Table 4's ModelScope figure is our multiply-add count without the attention products
    assert m["unet3d"]["macs_without_attention_per_video"] == pytest.approx(939, rel=0.01)
    assert (
        m["cmd"]["paper_tflops"] == 46.8 and paper["shared_sd_vae_decoder"]["flops_per_video"] > 0
    )


def test_flops_per_video_scale_linearly_with_steps():
    terms, _ = flops.paper_scale_terms()
    for key, method in terms.items():
        per_step = sum(t.per_call.flops for t in method if t.per_step)
        once = sum(t.per_call.flops for t in method if not t.per_step)
        assert per_step > 0
        for steps in (1, 25, 50):
            assert flops.flops_per_video(method, steps).flops == steps * per_step + once, key
            with_cfg = flops.flops_per_video(method, steps, guidance=True).flops
            assert with_cfg == 2 * steps * per_step + once
    a, b = (flops.paper_scale_flops(s)["methods"]["cmd"]["flops_per_video"] for s in (25, 50))
    cmd_step = sum(t.per_call.flops for t in terms["cmd"] if t.per_step) / 1e12  # TFLOPs
    assert b - a == pytest.approx(25 * cmd_step, abs=2e-3)


def test_cost_terms_are_what_the_pipeline_runs_per_step():
    """Counting the real CMDPipeline: one more step costs one content + one motion call (two of
    each with CFG), and the rest (text, decoder) is at least the decoder."""
    setting = tiny_setting("tiny", SMALL, batch_size=1)
    terms = flops.tiny_cost_terms(setting)["cmd"]
    per_step = sum(t.per_call.flops for t in terms if t.per_step)
    decoder = next(t for t in terms if t.name == "CMD decoder").per_call.flops
    pipe = cmd_pipeline(setting)

    def run(steps, guidance=1.0):
        return flops.count_flops(
            lambda: pipe(
                prompt=setting.prompt,
                class_labels=setting.label,
                num_inference_steps=steps,
                guidance_scale=guidance,
                output_type="pt",
            )
        ).flops

    two = run(2)
    assert run(3) - two == per_step
    assert run(3, guidance=2.0) - run(2, guidance=2.0) == 2 * per_step
    assert two - 2 * per_step >= decoder > 0


def test_bench_tiny_writes_markdown_json_and_chart(tmp_path, capsys):
    out = tmp_path / "bench"
    args = [
        "bench",
        "--scale",
        "tiny",
        "--steps",
        "2",
        "--repeats",
        "1",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--batch-size",
        "1",
        "--threads",
        "1",
        "--in-process",
        "--json",
    ]
    for item in SMALL:
        args += ["--set", item]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    tiny = result["tiny"]
    for key in ("cmd", "unet3d"):
        assert tiny["sampling"][key]["seconds_per_video"] > 0
        assert tiny["sampling"][key]["peak_memory_mib"] is None  # in process: not measured
    for key in ("autoencoder", "content", "motion", "unet3d"):
        assert tiny["training"][key]["seconds_per_step"] > 0
    assert tiny["training"]["motion"]["seconds_per_step_from_latent_cache"] > 0
    assert tiny["ratios_over_cmd"]["flops_per_video"] > 1
    assert tiny["setting"]["training_batch_size"] == 1 and tiny["setting"]["torch_threads"] == 1
    assert "not measured" in tiny["setting"]["memory"]
    saved = json.loads((out / "efficiency.json").read_text())
    assert saved["tiny"]["flops"] == tiny["flops"]
    assert "3-D UNet / CMD" in (out / "efficiency.md").read_text()
    achieved = tiny["achieved_gflops_per_s"]  # FLOPs over measured time, below the peak
    assert 0 < achieved["cmd content step"] and 0 < achieved["unet3d"] < 2 * achieved["fp32_peak"]
    gflop = tiny["flops"]["cmd"]["flops_per_video"]
    assert achieved["cmd"] == round(gflop / tiny["sampling"]["cmd"]["seconds_per_video"], 1)
    assert "fp32 peak of these cores" in (out / "efficiency.md").read_text()
    assert (out / "efficiency.png").read_bytes()[:4] == b"\x89PNG"


def test_isolated_job_measures_peak_memory():
    """The CLI's default path: a job in a fresh process reports its peak memory growth."""
    run = eff.TinyRun("tiny", SMALL, steps=2, repeats=1, batch_size=1, device="cpu", threads=1)
    result = eff._run_isolated("train-autoencoder", run)
    assert result["seconds_per_step"] > 0
    assert result["peak_memory_mib"] > 0


def test_bench_paper_json_has_the_required_keys(tmp_path, capsys):
    assert main(["bench", "--scale", "paper", "--json", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    for key in ("cmd_tflops_per_video", "unet3d_tflops_per_video", "video_dit_tflops_per_video"):
        assert result[key] > 0
    assert result["unet3d_tflops_per_video"] / result["cmd_tflops_per_video"] >= 15
    assert "tiny" not in result
    table = (tmp_path / "efficiency.md").read_text()
    assert "46.8" in table and "939.0" in table and "625.6" in table
    assert (tmp_path / "efficiency.png").is_file()


def test_bad_scale_and_steps_are_clear_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--scale", "huge"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'huge'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="scale must be one of"):
        eff.run_benchmark(scale="huge", out=None)
    assert main(["bench", "--scale", "paper", "--steps", "0", "--out", "unused"]) == 2
    assert "steps must be >= 1" in capsys.readouterr().err


def test_baseline_presets():
    from cmdvideo.benchmarks.baselines import VIDEO_UNET_PRESETS, build_video_dit

    with pytest.raises(ValueError, match="latte-xl"):
        build_video_dit("latte-xxl")
    tiny = VIDEO_UNET_PRESETS["tiny"]  # the tiny content UNet's widths, 3-D blocks
    assert tiny["block_out_channels"] == (32, 64, 64)
    assert tiny["down_block_types"] == ("DownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D")


def test_full_video_baseline_is_a_trainer_stage(tmp_path):
    """The baseline trains through the trainer's Stage API, samples whole videos and saves
    models that load back."""
    from diffusers import LatteTransformer3DModel

    from cmdvideo.benchmarks.baseline_stage import FullVideoStage, sample_full_video, unet3d_stage
    from cmdvideo.config import load_config
    from cmdvideo.models.text import WordTextEncoder
    from cmdvideo.training.stage import Stage

    setting = tiny_setting("tiny", SMALL, batch_size=1)
    stage = FullVideoStage(setting.config, setting.captions, "video_dit")
    assert isinstance(stage, Stage)
    model = stage.model()
    loss, _ = model(setting.batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    video = sample_full_video(stage, [setting.prompt], 1, torch.Generator().manual_seed(0))
    assert video.shape == (1, *stage.video_shape) == (1, 3, 8, 16, 16)
    net_dir, scheduler_dir, text_dir = stage.save_model(model, tmp_path)
    loaded = LatteTransformer3DModel.from_pretrained(net_dir)
    assert sum(p.numel() for p in loaded.parameters()) == flops.num_params(model.net)
    assert (scheduler_dir / "scheduler_config.json").is_file()
    assert WordTextEncoder.from_pretrained(text_dir).embed_dim == model.text_encoder.embed_dim
    with pytest.raises(ValueError, match="content.backbone is 'dit'"):
        unet3d_stage(load_config("tiny", ["content.backbone=dit"]), setting.captions)


def test_gpu_check_dry_run_takes_the_users_path(tmp_path):
    """The GPU check, on tiny sizes on the CPU: both paper presets' three stages through
    `cmdvideo train` with their steady state, the latent 3-D UNet baseline through the same
    loop, the assembled WebVid-style pipeline (SD-layout stand-ins) and both full-video
    baselines sampling at batch 1 and 4, and a later call of one part adding to the results."""
    from cmdvideo.benchmarks import gpu_check

    steps = gpu_check.gpu_timing.SKIP_STEPS + 1  # one step in the steady state
    result = gpu_check.run(
        tmp_path, dry_run=True, train_steps=steps, sample_steps=2, compiled=False
    )
    assert [(r["preset"], r["stage"]) for r in result["training"]] == [
        (p, s) for p in gpu_check.PRESETS for s in gpu_check.STAGES
    ]
    assert all(r["seconds_per_step"] > 0 and r["steps"] == steps for r in result["training"])
    assert all(r["steady_steps"] == 1 and r["samples_per_s"] > 0 for r in result["training"])
    webvid = {r["stage"]: r for r in result["training"] if r["preset"] == gpu_check.WEBVID}
    assert webvid["content"]["samples_per_step"] == 4  # batch 1 x the preset's accumulation
    assert webvid["content"]["tflops_per_s"] > 0 and webvid["motion"]["tflops_per_s"] > 0
    base = result["baseline_training"]
    assert base["stage"] == "unet3d" and base["samples_per_s"] > 0 and base["tflops_per_s"] > 0
    assert result["resume"]["resumed_to"] == 4  # a checkpoint at 2, resumed on the device to 4
    assert result["sampling"]["frames_shape"] == [1, 4, 16, 32, 3]  # the data's aspect
    assert result["sampling"]["seconds_per_video"] > 0 and result["sampling"]["dtype"]
    models = {"cmd": result["sampling"]["batches"], **result["baselines"]}
    assert models.keys() == {"cmd", "unet3d", "video_dit"}
    for name, rows in models.items():
        assert rows.keys() == {"1", "4"}, name
        for batch, row in rows.items():
            assert row["seconds_per_video"] > 0 and row["tflops_per_s"] > 0, (name, batch)
            assert row["shape"][0] == int(batch)  # the videos of one call
    ratios = result["sampling_ratios_over_cmd"]
    assert ratios["unet3d"].keys() == ratios["video_dit"].keys() == {"1", "4"}
    markdown = (tmp_path / "gpu_check.md").read_text()
    assert markdown.startswith("GPU check on cpu (dry run)")
    assert "3-D UNet baseline" in markdown and "ModelScope 35.1 s against CMD 3.13 s" in markdown
    assert json.loads((tmp_path / "gpu_check.json").read_text()) == result
    # a second call with one part keeps what the first measured, replacing only its own part
    again = gpu_check.run(
        tmp_path,
        dry_run=True,
        train_steps=steps,
        sample_steps=2,
        parts=("unet3d",),
        batch_sizes=(1,),
    )
    assert again["baselines"]["unet3d"].keys() == {"1"} and again["training"] == result["training"]
    assert again["baselines"]["video_dit"] == result["baselines"]["video_dit"]
    with pytest.raises(ValueError, match="unknown part 'sampels'"):
        gpu_check.parse_parts("training,sampels")
    assert gpu_check.parse_parts("baselines,training") == ("training", "unet3d", "video_dit")

"""What CMD saves against full-video diffusion (paper §4.3, Table 4): ``cmdvideo bench``.

Every comparison is for the same output video and the same number of sampling steps.

1. FLOPs per video at paper scale, counted on the meta device (:mod:`.flops`).
2. Wall time and peak memory per video at tiny scale (the tiny config: 3×16×32×32 pixels),
   CMD against the conventional video model made from CMD's own content UNet: the same widths
   plus temporal layers (``UNet3DConditionModel``, :mod:`cmdvideo.benchmarks.baseline_stage`).
3. Training cost per step of each CMD stage against that baseline's, same batch size.

Each tiny measurement is a job of :data:`JOBS`, run by default in a fresh process
(``python -m cmdvideo.benchmarks.efficiency '{"job": ...}'``, see :func:`_worker_main`): only
a fresh process measures a job's peak memory alone (:class:`.measure.PeakMemory`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from .flops import (
    METHODS,
    num_params,
    paper_scale_flops,
    prompt_conditions,
    spatial_size,
    tiny_scale_flops,
)
from .measure import PeakMemory, load_average, median_seconds
from .report import format_markdown, plot_benchmark
from .tiny import TinySetting, cmd_pipeline, cmd_stages, tiny_setting

logger = logging.getLogger(__name__)

SCALES = ("paper", "tiny", "both")


@dataclass(frozen=True)
class TinyRun:
    """How every tiny-scale job runs.

    Attributes:
        config, overrides: the config (name or path) and its ``--set`` overrides.
        steps: sampling steps (DDIM) per video, every model.
        repeats: timed repetitions per measurement (medians are reported).
        batch_size: training batch of every stage and of the baseline (None: the config's).
        device: where the models run ("cpu", "cuda").
        threads: torch CPU threads (None: torch's default).
    """

    config: str = "tiny"
    overrides: tuple[str, ...] = ()
    steps: int = 50
    repeats: int = 3
    batch_size: int | None = None
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "overrides", tuple(self.overrides))  # a list from the CLI / JSON

    def setting(self) -> TinySetting:
        return tiny_setting(self.config, self.overrides, self.batch_size)


# -- the jobs -----------------------------------------------------------------------------------


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def _per_video(once: float, parts: dict[str, float], steps: int, params: int) -> dict:
    """Seconds per video = ``once`` (the sampler run at 1 step) + (steps - 1) × one more step
    (the sum of ``parts``): a step costs the same every time."""
    per_step = sum(parts.values())
    return {
        "seconds_per_video": round(once + (steps - 1) * per_step, 4),
        "seconds_pipeline_one_step": round(once, 4),
        "seconds_per_step": round(per_step, 4),
        "parts": {k: round(v, 4) for k, v in parts.items()},
        "params_m": round(params / 1e6, 3),
    }


def _sample_cmd(setting: TinySetting, steps: int, repeats: int, device: str) -> dict:
    """CMD per video = (pipeline at 1 step: text, first step, decoding, output) + (steps - 1) ×
    (one content step + one motion step). Everything through the pipeline's own functions, at
    guidance scale 1 (no CFG), batch 1."""
    from ..models.content import num_content_classes
    from ..pipelines.denoise import sample_content, sample_motion

    pipe = cmd_pipeline(setting).to(device)
    unet, motion_model = pipe.content_model, pipe.motion_model
    prompt, label = [setting.prompt], torch.tensor([setting.label], device=device)
    labels = label if setting.classes and num_content_classes(unet) else None
    motion_labels = label if motion_model.config.num_classes else None
    generator = torch.Generator().manual_seed(0)
    accepts_text = pipe.accepts_text
    with torch.no_grad():
        text, null, pooled = prompt_conditions(pipe, setting.prompt, device)
        size = spatial_size(unet)
        content = torch.randn(1, unet.config.in_channels, *size, device=device)
        h, w = pipe.autoencoder.token_grid(*size)
        num_frames = setting.config.data.num_frames

        def whole(n):
            return lambda: pipe(
                prompt=prompt if accepts_text else None,
                class_labels=[setting.label] if pipe.num_classes else None,
                num_inference_steps=n,
                guidance_scale=1.0,
                generator=generator,
                output_type="pt",
            )

        content_in = (unet, pipe.content_scheduler, 1, labels, text, null)
        content_step = partial(
            sample_content, *content_in, 1.0, 1, generator, device, progress=False
        )
        motion_in = (
            motion_model,
            pipe.motion_scheduler,
            content,
            num_frames,
            h + w,
            motion_labels,
            pooled,
        )
        motion_step = partial(sample_motion, *motion_in, 1.0, 1, generator, progress=False)
        once = median_seconds(whole(1), repeats, device)
        parts = {
            "content step": median_seconds(content_step, repeats, device),
            "motion step": median_seconds(motion_step, repeats, device),
        }
    modules = [m for m in pipe.components.values() if isinstance(m, torch.nn.Module)]
    return _per_video(once, parts, steps, sum(num_params(m) for m in modules))


def _sample_unet3d(setting: TinySetting, steps: int, repeats: int, device: str) -> dict:
    """The 3-D UNet per video = (prompt + first step) + (steps - 1) × one denoising step."""
    from diffusers import DDIMScheduler

    from ..models.text import encode_prompts
    from ..pipelines.denoise import denoise
    from .baseline_stage import sample_full_video, unet3d_stage

    stage = unet3d_stage(setting.config, setting.captions)
    model = stage.model().to(device).eval()
    generator = torch.Generator().manual_seed(0)
    prompt = [setting.prompt]
    scheduler = DDIMScheduler.from_config(stage.scheduler.config)
    with torch.no_grad():
        states = encode_prompts(model.text_encoder, None, prompt, device).hidden

        def one_step():
            return denoise(
                stage.denoiser(model, states),
                (1, *stage.video_shape),
                scheduler,
                1,
                generator,
                device,
                progress=False,
            )

        once = median_seconds(
            lambda: sample_full_video(stage, prompt, 1, generator, device), repeats, device
        )
        step = median_seconds(one_step, repeats, device)
    return _per_video(once, {"denoising step": step}, steps, num_params(model))


def _train_stage(stage, setting: TinySetting, repeats: int, device: str) -> dict:
    """Median seconds of one training step as :class:`cmdvideo.training.trainer.Trainer` takes
    it (loss, backward, gradient clipping, AdamW, EMA update), on one fixed batch (data loading
    left out), after one untimed step that allocates the optimizer state."""
    from diffusers.training_utils import EMAModel

    cfg = setting.config.train
    model = stage.model().to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=cfg.learning_rate, betas=tuple(cfg.adam_betas), weight_decay=cfg.weight_decay
    )
    ema = EMAModel(params, decay=cfg.ema_decay)

    def step(batch):
        loss, _ = model(batch)
        loss.backward()
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.step(params)

    batch = _to(setting.batch, device)
    result = {
        "seconds_per_step": round(median_seconds(lambda: step(batch), repeats, device), 4),
        "params_m": round(sum(p.numel() for p in params) / 1e6, 3),
    }
    codec = getattr(stage, "codec", None)
    if codec is not None and stage.name in ("content", "motion"):
        # from a latent cache (`cmdvideo cache`): the frozen encoder is not run every step
        with torch.no_grad():
            content, motion = codec.to(device).encode(batch["video"])
        cached = {
            **{k: v for k, v in batch.items() if k != "video"},
            "content": content,
            "motion": motion,
        }
        result["seconds_per_step_from_latent_cache"] = round(
            median_seconds(lambda: step(cached), repeats, device), 4
        )
    return result


def _train_cmd(stage_name: str):
    def job(setting: TinySetting, steps: int, repeats: int, device: str) -> dict:
        from ..training.stages import AutoencoderStage

        if stage_name == "autoencoder":
            stage = AutoencoderStage(setting.config)
        else:
            _, content, motion = cmd_stages(setting)
            stage = content if stage_name == "content" else motion
        return _train_stage(stage, setting, repeats, device)

    return job


def _train_unet3d(setting: TinySetting, steps: int, repeats: int, device: str) -> dict:
    from .baseline_stage import unet3d_stage

    return _train_stage(unet3d_stage(setting.config, setting.captions), setting, repeats, device)


def _fp32_peak(setting: TinySetting, steps: int, repeats: int, device: str) -> dict:
    """What these cores reach at all in fp32 with these threads: a 1024 x 1024 matrix product
    (2.1 GFLOP), median of ``repeats`` runs of 8 — the ceiling the models are measured under."""
    a, b = torch.randn(1024, 1024, device=device), torch.randn(1024, 1024, device=device)

    def products():
        for _ in range(8):
            torch.mm(a, b)

    seconds = median_seconds(products, repeats, device, warmup=2)
    return {"gflops_per_s": round(8 * 2 * 1024**3 / seconds / 1e9, 1), "params_m": 0.0}


JOBS: dict[str, Callable[[TinySetting, int, int, str], dict]] = {
    "fp32-peak": _fp32_peak,
    "sample-cmd": _sample_cmd,
    "sample-unet3d": _sample_unet3d,
    "train-autoencoder": _train_cmd("autoencoder"),
    "train-content": _train_cmd("content"),
    "train-motion": _train_cmd("motion"),
    "train-unet3d": _train_unet3d,
}


# -- running the jobs ---------------------------------------------------------------------------


def run_job(
    job: str, run: TinyRun, measure_memory: bool = False, setting: TinySetting | None = None
) -> dict:
    """Run one measurement of :data:`JOBS`; ``measure_memory`` only in a fresh process (see
    :class:`.measure.PeakMemory`). ``setting`` reuses data already loaded (else built from
    ``run``)."""
    if job not in JOBS:
        raise ValueError(f"unknown benchmark job {job!r}; choose one of {sorted(JOBS)}")
    # Everything a job imports, imported before the memory baseline.
    import diffusers  # noqa: F401

    from ..pipelines import cmd  # noqa: F401
    from ..training import stages  # noqa: F401
    from . import baseline_stage  # noqa: F401

    setting = setting or run.setting()
    default_threads = torch.get_num_threads()
    torch.set_num_threads(run.threads or default_threads)
    try:
        memory = PeakMemory(run.device) if measure_memory else None
        torch.manual_seed(0)
        result = JOBS[job](setting, run.steps, run.repeats, run.device)
    finally:
        torch.set_num_threads(default_threads)
    result["peak_memory_mib"] = memory.peak_mib() if memory else None
    result["memory_method"] = memory.method if memory else "not measured (not in a fresh process)"
    return result


def _run_isolated(job: str, run: TinyRun) -> dict:
    """``run_job`` in a fresh Python process (``python -m cmdvideo.benchmarks.efficiency``)."""
    args = json.dumps({"job": job, "run": dataclasses.asdict(run), "measure_memory": True})
    proc = subprocess.run(
        [sys.executable, "-m", "cmdvideo.benchmarks.efficiency", args],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark job {job} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _worker_main(argv: list[str] | None = None) -> int:
    """``python -m cmdvideo.benchmarks.efficiency '{"job": ..., "run": {...}, ...}'``: one job,
    JSON out."""
    args = json.loads((argv if argv is not None else sys.argv[1:])[0])
    print(json.dumps(run_job(args["job"], TinyRun(**args["run"]), args["measure_memory"])))
    return 0


def tiny_scale_measurements(run: TinyRun, isolate: bool = True) -> dict:
    """Time and peak memory per video and training time per step, CMD against the 3-D UNet
    built from the content UNet's widths, in one run; ratios = baseline / CMD."""
    if run.repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {run.repeats}")
    setting = run.setting()
    results = {}
    for job in JOBS:
        logger.info("bench: %s (%s)", job, "fresh process" if isolate else "in process")
        start = time.perf_counter()
        if isolate:
            results[job] = _run_isolated(job, run)
        else:
            results[job] = run_job(job, run, setting=setting)
        logger.info("bench: %s done in %.1f s", job, time.perf_counter() - start)
    data = setting.config.data
    sampling = {"cmd": results["sample-cmd"], "unet3d": results["sample-unet3d"]}
    training = {
        name: results[f"train-{name}"] for name in ("autoencoder", "content", "motion", "unet3d")
    }
    flops = tiny_scale_flops(setting, run.steps)

    achieved = achieved_gflops(flops, sampling, results["fp32-peak"]["gflops_per_s"])
    return {
        "setting": {
            "config": run.config,
            "overrides": list(run.overrides),
            "video": f"3x{data.num_frames}x{data.height}x{data.width} pixels",
            "steps": run.steps,
            "repeats": run.repeats,
            "statistic": "median",
            "training_batch_size": setting.batch["video"].shape[0],
            "device": str(run.device),
            "torch_threads": run.threads or torch.get_num_threads(),
            "load_average": load_average(),
            "guidance": "scale 1 (no CFG) for every model",
            "isolated_processes": isolate,
            "memory": f"{results['sample-cmd']['memory_method']}, in a fresh process per job"
            if isolate
            else "not measured: needs a fresh process per job (isolate)",
            "time_per_video": "pipeline at 1 step (text, first step, decoding) + (steps - 1) x "
            "median time of one more step: a step costs the same every time",
        },
        "flops": flops,
        "achieved_gflops_per_s": achieved,
        "sampling": sampling,
        "training": training,
        "ratios_over_cmd": _ratios(sampling, training, flops),
    }


def _ratios(sampling: dict, training: dict, flops: dict) -> dict:
    """Baseline / CMD of each measurement (None where one side is missing)."""

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else round(a / b, 2)

    base = training["unet3d"]["seconds_per_step"]
    return {
        "time_per_video": ratio(
            sampling["unet3d"]["seconds_per_video"], sampling["cmd"]["seconds_per_video"]
        ),
        "peak_memory_sampling": ratio(
            sampling["unet3d"]["peak_memory_mib"], sampling["cmd"]["peak_memory_mib"]
        ),
        "flops_per_video": ratio(
            flops["unet3d"]["flops_per_video"], flops["cmd"]["flops_per_video"]
        ),
        "training_step": {
            name: ratio(base, training[name]["seconds_per_step"])
            for name in ("autoencoder", "content", "motion")
        },
        "training_step_memory": {
            name: ratio(training["unet3d"]["peak_memory_mib"], training[name]["peak_memory_mib"])
            for name in ("autoencoder", "content", "motion")
        },
    }


def achieved_gflops(flops: dict, sampling: dict, peak: float) -> dict:
    """GFLOP/s each model and each CMD stage reaches while sampling (its FLOPs over its
    measured time), beside the fp32 peak of the cores: the gap is the overhead."""
    parts = sampling["cmd"]["parts"]
    per_call = {c["name"]: c["per_call"] for c in flops["cmd"]["components"]}
    rate = lambda gflop, s: round(gflop / s, 1) if s else None  # noqa: E731
    return {
        "fp32_peak": peak,
        "cmd": rate(flops["cmd"]["flops_per_video"], sampling["cmd"]["seconds_per_video"]),
        "cmd content step": rate(per_call["content model"], parts["content step"]),
        "cmd motion step": rate(per_call["motion model"], parts["motion step"]),
        "unet3d": rate(flops["unet3d"]["flops_per_video"], sampling["unet3d"]["seconds_per_video"]),
    }


# -- the whole benchmark ------------------------------------------------------------------------


def run_benchmark(
    scale: str = "both",
    steps: int = 50,
    repeats: int = 3,
    out: str | Path | None = "results/bench",
    device: str = "cpu",
    config: str = "tiny",
    overrides: list[str] | tuple = (),
    batch_size: int | None = None,
    threads: int | None = None,
    isolate: bool = True,
) -> dict:
    """FLOPs at paper scale and/or measurements at tiny scale; writes ``OUT/efficiency.md``,
    ``.json`` and ``.png`` when ``out`` is given.

    Args:
        scale: "paper" (FLOPs on the meta device, seconds), "tiny" (time and memory, minutes)
            or "both".
        steps: sampling steps (DDIM) per video, every model.
        repeats: timed repetitions per measurement (medians are reported).
        device: where the tiny models run ("cpu", "cuda"); paper scale is always counted on meta.
        config, overrides: the tiny-scale config (name or path) and ``--set`` overrides.
        batch_size: training batch of every stage and of the baseline (default: the config's).
        threads: torch CPU threads for the tiny measurements (default: torch's).
        isolate: each tiny measurement in a fresh process (required for CPU peak memory).

    Returns:
        The result dict (also ``efficiency.json``); with paper scale it has
        ``cmd_tflops_per_video``, ``unet3d_tflops_per_video``, ``video_dit_tflops_per_video``.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    start = time.perf_counter()
    result: dict = {"scale": scale, "steps": steps}
    if scale in ("paper", "both"):
        paper = paper_scale_flops(steps)
        result["paper"] = paper
        for key in METHODS:
            result[f"{key}_tflops_per_video"] = paper["methods"][key]["flops_per_video"]
        result["flop_convention"] = (
            "2 FLOPs per multiply-add (FlopCounterMode), attention products included, no CFG, "
            "text encoders and the shared SD VAE decoder excluded"
        )
    if scale in ("tiny", "both"):
        run = TinyRun(config, overrides, steps, repeats, batch_size, device, threads)
        result["tiny"] = tiny_scale_measurements(run, isolate)
    result["seconds"] = round(time.perf_counter() - start, 1)
    if out is not None:
        _write_results(result, Path(out))
    return result


def _write_results(result: dict, out: Path) -> None:
    """``OUT/efficiency.md``, ``.png`` and ``.json`` (which lists the three files)."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "markdown": out / "efficiency.md",
        "json": out / "efficiency.json",
        "chart": out / "efficiency.png",
    }
    result["files"] = {k: str(v) for k, v in files.items()}
    files["markdown"].write_text(format_markdown(result))
    plot_benchmark(result, files["chart"])
    files["json"].write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(_worker_main())

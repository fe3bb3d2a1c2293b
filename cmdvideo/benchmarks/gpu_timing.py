"""What the GPU check times at the paper's size (§4.3, Table 4: 16 frames at 512×1024, SD VAE
latents 4×16×64×128): seconds per video of CMD and of the two full-video baselines, the
steady-state training speed of CMD's stages and of the 3-D UNet baseline, and the share of the
card's bf16 peak their FLOPs reach. :mod:`cmdvideo.benchmarks.gpu_check` runs them.

- Seconds per video: the median of 3 calls after a one-step warm-up call (kernels, cuDNN's
  autotuning, the allocator), over the batch; no classifier-free guidance for any model; every
  model decodes its latent frames with the same SD VAE and hands the videos to the CPU.
- FLOPs: 2 per multiply-add (:mod:`.flops`), counted on ``meta`` copies of the timed models,
  SD VAE decoding included, text encoders not. Training: model FLOPs, 3 × the trained
  network's forward per sample (no frozen encoders, no checkpointing recomputation).
- Training: a step is ``batch_size × gradient_accumulation_steps`` samples; the steady state
  leaves out the first :data:`SKIP_STEPS` steps.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from .baseline_stage import FullVideoStage, unet3d_stage
from .flops import LABELS, OPENCLIP_H, T5_XXL, count_flops, full_video_cost_terms
from .measure import PeakMemory, median_seconds

SKIP_STEPS = 3  # training steps left out of the steady state (start-up, autotuning, allocator)
BATCH_SIZES = (1, 4)
REPEATS = 3
BASELINES = ("unet3d", "video_dit")
# Dense bf16 tensor-core peaks (TFLOP/s, NVIDIA's datasheets) by a fragment of the device's
# name, the more specific first.
BF16_PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.4))
BF16_PEAK_TFLOPS += (("H200 NVL", 835.0), ("H200", 989.4), ("A100", 312.0), ("L40S", 362.1))
# The paper's seconds per video (§4.3; 512x1024, 16 frames, one A100): CMD against ModelScope.
PAPER_SECONDS_PER_VIDEO = {"cmd": 3.13, "unet3d": 35.1}
TINY_TEXT = (64, 8)  # (width, tokens) of the dry run's random text states, as flops.CLIP_L
PROMPT = "a red circle moving left"


def bf16_peak_tflops(device_name: str) -> float | None:
    """The card's dense bf16 peak in TFLOP/s, None for a device not in the table (a CPU)."""
    for fragment, peak in BF16_PEAK_TFLOPS:
        if fragment.lower() in device_name.lower():
            return peak
    return None


def achieved(flops: float | None, seconds: float | None, peak: float | None) -> dict:
    """TFLOP/s of ``flops`` done in ``seconds`` and its share of the bf16 ``peak`` (None where
    either is unknown)."""
    if not flops or not seconds:
        return {"tflops_per_s": None, "of_bf16_peak": None}
    rate = flops / seconds / 1e12
    share = float(f"{rate / peak:.3g}") if peak else None
    return {"tflops_per_s": float(f"{rate:.3g}"), "of_bf16_peak": share}


# -- training ------------------------------------------------------------------------------------


def samples_per_step(config) -> int:
    """Videos one optimizer step learns from in one process."""
    return config.train.batch_size * config.train.gradient_accumulation_steps


def steady_state(metrics: Path, samples: int, skip: int = SKIP_STEPS) -> dict:
    """Steady-state training speed from a run's ``metrics.jsonl`` (``train.log_every=1``): the
    median time of the steps after the first ``skip``, and samples per second at ``samples``
    per step; None where no step is left after ``skip``."""
    log = [json.loads(line) for line in Path(metrics).read_text().splitlines()]
    per_step = [1 / r["steps_per_s"] for r in log if "steps_per_s" in r][skip:]
    seconds = statistics.median(per_step) if per_step else None
    return {
        "steady_steps": len(per_step),
        "steady_seconds_per_step": None if seconds is None else round(seconds, 4),
        "samples_per_step": samples,
        "samples_per_s": None if seconds is None else float(f"{samples / seconds:.4g}"),
    }


def training_throughput(row: dict, forward_flops: float | None, peak: float | None) -> dict:
    """Model FLOPs per sample (3 × ``forward_flops``) and what the steady state achieves."""
    flops = 3 * forward_flops if forward_flops else None
    per_sample = 1 / row["samples_per_s"] if row.get("samples_per_s") else None
    return {"model_flops_per_sample": flops, **achieved(flops, per_sample, peak)}


class LatentFullVideoStage(FullVideoStage):
    """The 3-D UNet baseline in latent mode, ModelScope's setting: the frozen frame VAE
    encodes every training video (as CMD's stages do without a latent cache) and the 3-D UNet
    (the content UNet's widths plus temporal layers, :func:`unet3d_stage`) learns on the
    (C, T, H/f, W/f) latents, with the config's gradient checkpointing where diffusers'
    ``UNet3DConditionModel`` supports it (:attr:`checkpointing`). It is trained to be timed:
    nothing is saved.

    Args:
        config, captions: as :func:`unet3d_stage` takes them.
        frame_vae: a :class:`cmdvideo.models.codec.FrameVAE` (SD's VAE in latent mode).
    """

    def __init__(self, config, captions: list[str], frame_vae):
        widths = unet3d_stage(config, captions).content_unet
        super().__init__(config, captions, "unet3d", widths)
        self.frame_vae = frame_vae.eval().requires_grad_(False)

    @property
    def video_shape(self) -> tuple[int, int, int, int]:
        """(C, T, h, w) of the latent videos it denoises."""
        _, t, h, w = super().video_shape
        f = self.frame_vae.downsample
        return self.frame_vae.latent_channels, t, h // f, w // f

    @property
    def checkpointing(self) -> bool:
        supported = super().model().net._supports_gradient_checkpointing
        return bool(self.config.train.gradient_checkpointing and supported)

    def model(self):
        model = super().model()
        if self.checkpointing:
            model.net.enable_gradient_checkpointing()
        return model

    def objective(self, modules, batch: dict):
        video = batch["video"]  # (B, 3, T, H, W) in [-1, 1]
        self.frame_vae.to(video.device)
        latents = self.frame_vae.encode(video)  # (B, C, T, h, w)
        return super().objective(modules, {**batch, "video": latents})

    def save_model(self, model, out_dir: Path) -> list[Path]:
        return []


def train_unet3d_baseline(
    preset: str, sets: list[str], data: Path, out: Path, steps: int, device: str
) -> dict:
    """The latent 3-D UNet baseline (:class:`LatentFullVideoStage`) trained for ``steps`` steps
    by the training loop CMD's stages use, on the same data and settings: time, steady state,
    peak memory, model FLOPs per sample."""
    from ..config import load_config
    from ..data import build_train_and_eval, dataset_captions
    from ..models.codec import FrameVAE
    from ..training.trainer import Trainer

    config = load_config(preset, [*sets, f"data.source={data}", f"train.max_steps={steps}"])
    train_set, _ = build_train_and_eval(config.data)
    vae = FrameVAE.from_pretrained(config.autoencoder.vae, config.autoencoder.vae_subfolder)
    stage = LatentFullVideoStage(config, dataset_captions(train_set), vae)
    release(device)
    row = {"stage": "unet3d", "preset": preset, "steps": steps}
    memory = PeakMemory(device)
    start = time.perf_counter()
    try:
        Trainer(stage, train_set, config, out).train()
        row.update(steady_state(out / "metrics.jsonl", samples_per_step(config)))
    except torch.cuda.OutOfMemoryError as error:  # recorded; the check goes on
        torch.cuda.empty_cache()
        row["error"] = "out of memory: " + str(error).split("\n")[0][:200]
    peak_mib = memory.peak_mib()
    model = stage.model()
    tokens, width = model.text_encoder.config.max_length, model.text_encoder.embed_dim
    return {
        **row,
        "seconds": round(time.perf_counter() - start, 1),
        "peak_memory_gib": None if peak_mib is None else round(peak_mib / 1024, 2),
        "params_m": round(sum(p.numel() for p in model.net.parameters()) / 1e6, 1),
        "gradient_checkpointing": stage.checkpointing,
        "forward_flops": forward_flops(model.net, stage.video_shape, (tokens, width)),
    }


# -- FLOPs ---------------------------------------------------------------------------------------


def meta_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The same architecture (a diffusers config model) on the meta device: no memory."""
    with torch.device("meta"):
        return type(model).from_config(model.config)


def forward_flops(net, latent_shape: tuple, text_shape: tuple[int, int]) -> int:
    """FLOPs of one call of a full-video denoiser on one (C, T, h, w) video with text states of
    ``text_shape`` (tokens, width), counted on a meta copy."""
    c, t, h, w = latent_shape
    with torch.device("meta"):
        states = torch.randn(1, *text_shape)
    terms = full_video_cost_terms("net", meta_copy(net), c, t, (h, w), states)
    return terms[0].per_call.flops


def frame_decode_flops(vae, latent_shape: tuple) -> int:
    """FLOPs of decoding one video's (C, T, h, w) latent frames with an ``AutoencoderKL``."""
    c, t, h, w = latent_shape
    decoder = meta_copy(vae)
    with torch.device("meta"):
        latents = torch.randn(t, c, h, w)
    return count_flops(lambda: decoder.decode(latents)).flops


def cmd_forward_flops(pipe, prompt: str = PROMPT) -> dict[str, int]:
    """FLOPs of one call of each CMD model for one video as the pipeline calls them
    (:func:`.flops.cmd_cost_terms`, guidance scale 1) on meta copies of ``pipe``'s models, and
    of decoding its frames with the SD VAE: {"content model", "motion model", "CMD decoder",
    "SD VAE decoder"}."""
    from ..models.text import TextEmbeddings
    from .flops import cmd_cost_terms, prompt_conditions, spatial_size

    def meta(text):
        if text is None:
            return None
        parts = (text.hidden, text.pooled, text.mask)
        return TextEmbeddings(*(None if x is None else x.to("meta") for x in parts))

    text, null, pooled = prompt_conditions(pipe, prompt, pipe.device)
    ae, frames = meta_copy(pipe.autoencoder), pipe.config.num_frames
    content, motion = meta_copy(pipe.content_model), meta_copy(pipe.motion_model)
    pooled = None if pooled is None else pooled.to("meta")
    terms = cmd_cost_terms(content, motion, ae, frames, meta(text), meta(null), pooled)
    flops = {term.name: term.per_call.flops for term in terms}
    if pipe.vae is not None:  # latent mode
        shape = (ae.config.in_channels, frames, *spatial_size(pipe.content_model))
        flops["SD VAE decoder"] = frame_decode_flops(pipe.vae, shape)
    return flops


def cmd_flops_per_video(flops: dict[str, int], steps: int) -> int:
    """Both denoisers ``steps`` times, both decoders once."""
    per_step = flops["content model"] + flops["motion model"]
    return steps * per_step + flops["CMD decoder"] + flops.get("SD VAE decoder", 0)


# -- sampling ------------------------------------------------------------------------------------


def time_videos(
    run: Callable[[int], object],
    batch: int,
    steps: int,
    device: str,
    flops_per_video: float | None = None,
    peak: float | None = None,
) -> dict:
    """Seconds per video of ``run(num_steps)``, which makes ``batch`` videos: the median of
    :data:`REPEATS` calls at ``steps`` after one warm-up call at one step, over the batch; peak
    memory over the timed calls. Running out of GPU memory is recorded, not raised."""
    try:
        out = run(1)  # warm-up
        memory = PeakMemory(device)
        seconds = median_seconds(lambda: run(steps), REPEATS, device, warmup=0)
        peak_mib = memory.peak_mib()
    except torch.cuda.OutOfMemoryError as error:  # the next measurement still runs
        torch.cuda.empty_cache()
        return {"batch": batch, "error": "out of memory: " + str(error).split("\n")[0][:200]}
    return {
        "batch": batch,
        "shape": list(getattr(out, "frames", out).shape),
        "steps": steps,
        "seconds_per_call": round(seconds, 4),
        "seconds_per_video": round(seconds / batch, 4),
        "peak_memory_gib": None if peak_mib is None else round(peak_mib / 1024, 2),
        "flops_per_video": flops_per_video,
        **achieved(flops_per_video, seconds / batch, peak),
    }


def baseline_net(kind: str, latent_shape: tuple, dry_run: bool, device: str = "cpu"):
    """A full-video baseline for (C, T, h, w) latents, random weights, built on ``device``, and
    the (tokens, width) of the text states it reads: ModelScope's 3-D UNet with OpenCLIP-H's,
    Latte-XL/2 with T5-XXL's (as :func:`.flops.paper_scale_terms` counts them); the tiny
    presets in a dry run."""
    from .baselines import build_video_dit, build_video_unet

    if kind not in BASELINES:
        raise ValueError(f"unknown baseline {kind!r}; choose one of {BASELINES}")
    c, t, h, _ = latent_shape
    preset = "tiny" if dry_run else {"unet3d": "modelscope-t2v", "video_dit": "latte-xl"}[kind]
    width, tokens = TINY_TEXT if dry_run else {"unet3d": OPENCLIP_H, "video_dit": T5_XXL}[kind]
    with torch.device(device):
        if kind == "unet3d":
            net = build_video_unet(preset, in_channels=c, out_channels=c, cross_attention_dim=width)
        else:  # Latte learns its variance: twice the channels out
            shape = {"sample_size": h, "video_length": t, "caption_channels": width}
            net = build_video_dit(preset, in_channels=c, out_channels=2 * c, **shape)
    return net, (tokens, width)


def baseline_sampling(
    kind: str,
    frame_vae,
    data,
    steps: int,
    batch_sizes: tuple[int, ...],
    device: str,
    dry_run: bool = False,
    peak: float | None = None,
) -> Iterator[dict]:
    """Seconds per video of a full-video baseline (:func:`baseline_net`) at ``data``'s size in
    ``frame_vae``'s latent space, bf16 on a GPU, one :func:`time_videos` row per batch size as
    it is measured: DDIM over the whole latent video, random text states, the frames decoded
    with ``frame_vae`` and handed to the CPU in [0, 1], as CMD's pipeline does."""
    from diffusers import DDIMScheduler

    from ..pipelines.denoise import denoise

    f = frame_vae.downsample
    shape = (frame_vae.latent_channels, data.num_frames, data.height // f, data.width // f)
    release(device)
    net, text_shape = baseline_net(kind, shape, dry_run, device)
    flops = steps * forward_flops(net, shape, text_shape)
    flops += frame_decode_flops(frame_vae.vae, shape)
    dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    net.to(dtype=dtype).eval()
    frame_vae.to(device, dtype)
    scheduler = DDIMScheduler(clip_sample=False)  # its values cost nothing
    generator = torch.Generator().manual_seed(0)
    params_m = round(sum(p.numel() for p in net.parameters()) / 1e6, 1)
    for batch in batch_sizes:
        states = torch.randn(batch, *text_shape, device=device, dtype=dtype)

        @torch.no_grad()
        def run(n, batch=batch, states=states):
            def denoiser(x, t):  # Latte's learned variance: the first C channels are ε
                return net(x.to(dtype), t, encoder_hidden_states=states).sample[:, : shape[0]]

            latents = denoise(
                denoiser, (batch, *shape), scheduler, n, generator, device, progress=False
            )
            return ((frame_vae.decode(latents).float().clamp(-1, 1) + 1) / 2).cpu()

        yield {"params_m": params_m, **time_videos(run, batch, steps, device, flops, peak)}


def cmd_sampling(
    pipeline: Path,
    steps: int,
    device: str,
    compiled: bool = True,
    batch_sizes: tuple[int, ...] = (1,),
    cmd_flops: dict | None = None,
    peak: float | None = None,
    prompt: str = PROMPT,
) -> Iterator[dict]:
    """Videos from an assembled pipeline (random weights), bf16 on a GPU, no CFG: a
    :func:`time_videos` row per batch size (TFLOP/s from :func:`cmd_forward_flops`'s
    ``cmd_flops``), then one video with the denoisers compiled (``CMDPipeline.compile``; the
    compile time beside it). Yields the row each time it grows."""
    from ..pipelines.cmd import CMDPipeline

    pipe = CMDPipeline.from_pretrained(pipeline).to(device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    pipe.to(dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    flops = cmd_flops_per_video(cmd_flops, steps) if cmd_flops else None

    def videos(batch: int):
        def run(n: int):
            generator = torch.Generator().manual_seed(0)
            prompts = [prompt] * batch
            return pipe(prompts, num_inference_steps=n, guidance_scale=1.0, generator=generator)

        return run

    row = {"steps": steps, "dtype": str(dtype), "batches": {}}
    for batch in batch_sizes:
        timed = time_videos(videos(batch), batch, steps, device, flops, peak)
        row["batches"][str(batch)] = timed
        if batch == batch_sizes[0]:  # one video as a user makes it
            row.update(
                frames_shape=timed.get("shape"),
                peak_memory_gib=timed.get("peak_memory_gib"),
                seconds_per_video=timed.get("seconds_per_video"),
            )
        yield row
    if compiled:
        run = videos(1)
        start = time.perf_counter()
        pipe.compile()
        run(1)  # the compiler runs here
        row["compile_seconds"] = round(time.perf_counter() - start, 1)
        seconds = median_seconds(lambda: run(steps), 3, device, warmup=0)
        row["compiled_seconds_per_video"] = round(seconds, 3)
        yield row


def sampling_ratios(result: dict) -> dict:
    """Seconds per video of each baseline over CMD's, per batch size (where both were timed),
    beside the paper's 3-D UNet / CMD."""
    cmd = (result.get("sampling") or {}).get("batches", {})
    ratios = {}
    for kind, rows in (result.get("baselines") or {}).items():
        ratios[kind] = {
            b: round(row["seconds_per_video"] / cmd[b]["seconds_per_video"], 2)
            for b, row in rows.items()
            if row.get("seconds_per_video") and cmd.get(b, {}).get("seconds_per_video")
        }
    paper = PAPER_SECONDS_PER_VIDEO
    ratios["paper_unet3d"] = round(paper["unet3d"] / paper["cmd"], 1)
    return ratios


# -- the markdown --------------------------------------------------------------------------------


def release(device: str) -> None:
    """Free what earlier measurements left (compiled graphs hold their models) before one whose
    peak memory counts."""
    torch.compiler.reset()
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def _cell(value, fmt: str = "{}") -> str:
    return "–" if value is None else fmt.format(value)


def _rate(row: dict) -> str:
    share = row.get("of_bf16_peak")
    rate = _cell(row.get("tflops_per_s"), "{:.3g}")
    return rate + (f" ({share:.0%})" if share is not None else "")


def training_markdown(result: dict) -> list[str]:
    """The training table: every stage's step time, peak memory and steady state."""
    rows = [*result.get("training", []), *filter(None, [result.get("baseline_training")])]
    if not rows:
        return []
    lines = [
        "",
        "| preset | stage | steps | s / step | peak memory (GiB) | steady s / step | "
        "samples / s | TFLOP/s (of bf16 peak) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {'3-D UNet baseline' if r['stage'] == 'unet3d' else r['stage']}"
            f"{' (' + r['error'] + ')' if 'error' in r else ''} | {r['steps']} | {_cell(r.get('seconds_per_step'))} | "
            f"{_cell(r['peak_memory_gib'], '{:.1f}')} | {_cell(r.get('steady_seconds_per_step'))} "
            f"| {_cell(r.get('samples_per_s'))} | {_rate(r)} |"
        )
    return lines + [
        "",
        f"Steady state: the median step after the first {SKIP_STEPS}; a step is batch × gradient "
        "accumulation samples, data loading and frozen encoders included. TFLOP/s: model FLOPs, "
        "3 × the trained network's forward per sample.",
    ]


def sampling_markdown(result: dict) -> list[str]:
    """The seconds-per-video table, CMD against the baselines, and the paper's ratio."""
    rows = [("cmd", (result.get("sampling") or {}).get("batches", {}))]
    rows += [(kind, r) for kind, r in (result.get("baselines") or {}).items()]
    if not any(r for _, r in rows):
        return []
    ratios = result.get("sampling_ratios_over_cmd") or sampling_ratios(result)
    lines = [
        "",
        "Seconds per video at the paper's size (median of 3 calls after a one-step warm-up, "
        "over the batch; no CFG; SD VAE decoding included; bf16 on a GPU):",
        "",
        "| model | batch | s / video | s / call | peak memory (GiB) | TFLOP / video | "
        "TFLOP/s (of bf16 peak) | time / CMD |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, by_batch in rows:
        label = LABELS[kind] + (", tiny preset" if result["dry_run"] and kind != "cmd" else "")
        for b, r in by_batch.items():
            if "error" in r:
                lines.append(f"| {label} | {b} | {r['error']} | | | | | |")
                continue
            flops = r.get("flops_per_video")
            lines.append(
                f"| {label} | {b} | {r['seconds_per_video']} | {r['seconds_per_call']} | "
                f"{_cell(r['peak_memory_gib'], '{:.1f}')} | "
                f"{_cell(flops and flops / 1e12, '{:.3g}')} | {_rate(r)} | "
                f"{_cell(ratios.get(kind, {}).get(b), '{}×')} |"
            )
    paper = PAPER_SECONDS_PER_VIDEO
    here = ", ".join(f"{r}× at batch {b}" for b, r in ratios.get("unet3d", {}).items())
    lines += [
        "",
        f"The paper (§4.3, one A100): ModelScope {paper['unet3d']} s against CMD {paper['cmd']} s "
        f"per video, {ratios['paper_unet3d']}×; here, 3-D UNet / CMD: "
        f"{here or '– (not measured)'}.",
    ]
    return lines

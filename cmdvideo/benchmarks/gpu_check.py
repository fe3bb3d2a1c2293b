"""The GPU check: every stage of both paper presets trained for a few steps at full model size
(reduced batch, bf16, the preset's checkpointing), their steady-state speed beside the 3-D UNet
baseline's, and the paper's efficiency comparison (§4.3, Table 4) at its size: seconds per video
at batch 1 and 4 of the assembled WebVid-size CMD pipeline against the 3-D UNet of ModelScope's
architecture and the full-video DiT (Latte-XL/2), with peak memory and the share of the card's
bf16 peak (:mod:`.gpu_timing`); then the tiny efficiency benchmark on the device. Written to
``results/gpu/`` after every measurement (a run cut off keeps what it measured). Weights are
random: Stable Diffusion's VAE, UNet and CLIP are built from their published configurations.

    python -m cmdvideo.benchmarks.gpu_check --out results/gpu           # one GPU, every part
    python -m cmdvideo.benchmarks.gpu_check --parts training,sampling   # or in two calls,
    python -m cmdvideo.benchmarks.gpu_check --parts baselines,bench     # into the same --out
    python -m cmdvideo.benchmarks.gpu_check --dry-run --out /tmp/gpu    # same path, tiny, CPU

Everything runs the user's path (what ``cmdvideo train`` and ``pipeline assemble`` call, and the
pipeline), with the preset configs and overrides only for what cannot be downloaded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import string
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import gpu_timing

STAGES = ("autoencoder", "content", "motion")
WEBVID = "webvid-latent-512x1024"
# Only what stands in for downloads, and the reduced batch.
PRESETS = {
    WEBVID: ["content.init=null", "content.preset=sd-1.5"],
    "ucf101-pixel-64": [],
}
# What can run in one call (--parts): "baselines" is both baselines, "all" everything.
PARTS = ("training", "sampling", "unet3d", "video_dit", "bench")
PART_GROUPS = {"baselines": gpu_timing.BASELINES, "all": PARTS}
# The dry run: the same presets at sizes a CPU trains in seconds.
DRY_RUN = [
    "data.num_frames=4",
    "autoencoder.overrides.hidden_size=32",
    "autoencoder.overrides.encoder_depth=1",
    "autoencoder.overrides.decoder_depth=1",
    "autoencoder.overrides.num_heads=2",
    "motion.overrides.hidden_size=32",
    "motion.overrides.depth=1",
    "motion.overrides.num_heads=2",
    "train.mixed_precision=no",
]
DRY_RUN_PRESET = {
    WEBVID: [
        "data.height=16",
        "data.width=32",
        "content.preset=tiny",
        "content.overrides.block_out_channels=[16,32,32]",
        "content.overrides.norm_num_groups=8",
        "content.overrides.attention_head_dim=8",
    ],
    "ucf101-pixel-64": [
        "data.height=16",
        "data.width=16",
        "content.preset=tiny",
        "content.overrides.hidden_size=32",
        "content.overrides.depth=1",
        "content.overrides.num_heads=2",
    ],
}


def stand_ins(root: Path, dry_run: bool) -> dict[str, str]:
    """Random Stable Diffusion parts in SD's folder layout (``vae/``, ``text_encoder/``,
    ``tokenizer/``): full-size configurations, or tiny ones for the dry run."""
    from diffusers import AutoencoderKL

    from ..models.text import require_transformers
    from .baselines import STABLE_DIFFUSION_VAE

    transformers = require_transformers("the GPU check's CLIP text encoder")
    CLIPTextConfig, CLIPTextModel = transformers.CLIPTextConfig, transformers.CLIPTextModel
    CLIPTokenizer = transformers.CLIPTokenizer

    vae = dict(STABLE_DIFFUSION_VAE)
    if dry_run:
        vae.update(
            block_out_channels=(8, 16),
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            layers_per_block=1,
            norm_num_groups=4,
        )
    AutoencoderKL(**vae).save_pretrained(root / "vae")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in string.ascii_lowercase:
        vocab[ch], vocab[ch + "</w>"] = len(vocab), len(vocab) + 1
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(
        str(root / "vocab.json"), str(root / "merges.txt"), model_max_length=77
    ).save_pretrained(root / "tokenizer")
    width = 32 if dry_run else 768  # CLIP ViT-L/14's text model: 12 layers, 768 wide
    text = CLIPTextConfig(
        vocab_size=len(vocab) + 1,
        hidden_size=width,
        intermediate_size=4 * width,
        num_hidden_layers=2 if dry_run else 12,
        num_attention_heads=2 if dry_run else 12,
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    CLIPTextModel(text).save_pretrained(root / "text_encoder")
    return {"vae": str(root), "text": str(root)}


def synthetic_videos(root: Path, height: int, width: int, frames: int = 24, per_class: int = 2):
    """Smooth moving colour waves as real H.264 files (moving-shapes stops at 256 pixels):
    ``root/videos/<class>/*.mp4`` (UCF-101 layout, class labels) and ``root/videos.csv`` (the
    same files with captions, WebVid style). Returns (folder, csv)."""
    import csv

    import av
    import numpy as np

    folder = root / "videos"
    rows = []
    for label, name in enumerate(("drifting", "rising")):
        for k in range(per_class):
            path = folder / name / f"{name}-{k}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            t, y, x = np.meshgrid(
                np.arange(frames), np.arange(height), np.arange(width), indexing="ij"
            )
            phase = (x + (4 + k) * t) if label == 0 else (y - (4 + k) * t)
            video = np.stack(
                [
                    128 + 100 * np.sin(phase / 16.0),
                    128 + 100 * np.cos(phase / 23.0),
                    128 + 60 * np.sin((x + y) / 30.0 + 0 * t),
                ],
                -1,
            ).astype(np.uint8)
            with av.open(str(path), "w") as container:
                stream = container.add_stream("libx264", rate=8)
                stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
                for frame in video:
                    container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
                container.mux(stream.encode())
            rows.append({"path": str(path.relative_to(root)), "caption": f"colour waves {name}"})
    with open(root / "videos.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "caption"])
        writer.writeheader()
        writer.writerows(rows)
    return folder, root / "videos.csv"


def train_stage(
    preset: str,
    stage: str,
    data: Path,
    out: Path,
    sets: list[str],
    steps: int,
    device: str,
    autoencoder: Path | None = None,
) -> dict:
    """What ``cmdvideo train STAGE --config PRESET --data DATA --max-steps STEPS --set ...``
    runs, for ``steps`` steps; step time, peak memory and the steady state after the first
    :data:`.gpu_timing.SKIP_STEPS` steps (:func:`.gpu_timing.steady_state`)."""
    from ..config import load_config
    from ..training.run import train
    from .measure import PeakMemory

    config = load_config(preset, [*sets, f"data.source={data}", f"train.max_steps={steps}"])
    memory = PeakMemory(device)
    start = time.perf_counter()
    train(stage, config, out, autoencoder=autoencoder)
    seconds = time.perf_counter() - start
    log = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    per_step = [1 / r["steps_per_s"] for r in log if "steps_per_s" in r][1:]  # after the first
    return {
        "stage": stage,
        "preset": preset,
        "steps": steps,
        "seconds": round(seconds, 1),
        "seconds_per_step": round(statistics.median(per_step), 3) if per_step else None,
        "peak_memory_gib": None if (mib := memory.peak_mib()) is None else round(mib / 1024, 2),
        **gpu_timing.steady_state(out / "metrics.jsonl", gpu_timing.samples_per_step(config)),
    }


def resume_check(preset: str, data: Path, out: Path, sets: list[str], autoencoder: Path) -> dict:
    """``train content --resume`` on this device: 2 steps with a checkpoint, then resumed to 4
    (the EMA weights come back from the checkpoint on the CPU; they must follow the model)."""
    from ..config import load_config
    from ..training.run import train

    every = [*sets, f"data.source={data}", "train.checkpoint_every=2"]
    train(
        "content", load_config(preset, [*every, "train.max_steps=2"]), out, autoencoder=autoencoder
    )
    train(
        "content",
        load_config(preset, [*every, "train.max_steps=4"]),
        out,
        resume=True,
        autoencoder=autoencoder,
    )
    log = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    ends = [r["step"] for r in log if r.get("event") == "end"]
    return {"stage": "content", "preset": preset, "resumed_to": ends[-1] if ends else None}


def parse_parts(text: str) -> tuple[str, ...]:
    """``--parts``: comma-separated names of :data:`PARTS` or :data:`PART_GROUPS`."""
    parts: list[str] = []
    for name in filter(None, (n.strip() for n in text.split(","))):
        if name not in PARTS and name not in PART_GROUPS:
            valid = ", ".join((*PARTS, *PART_GROUPS))
            raise ValueError(f"unknown part {name!r} in --parts; choose from {valid}")
        parts += PART_GROUPS.get(name, (name,))
    if not parts:
        raise ValueError("--parts names no part; e.g. --parts training,sampling")
    return tuple(p for p in PARTS if p in parts)


def preset_sets(preset: str, sd: dict[str, str], dry_run: bool) -> list[str]:
    """The ``--set`` overrides a preset runs with here: stand-ins, batch 1, a log every step."""
    sets = [
        *PRESETS[preset],
        "train.batch_size=1",
        "train.preview_every=0",
        "train.log_every=1",
        "train.checkpoint_every=1000000",
        "data.num_workers=0",
    ]
    if preset == WEBVID:
        sets += [
            f"autoencoder.vae={sd['vae']}",
            f"content.text_encoder={sd['text']}",
            f"motion.text_encoder={sd['text']}",
        ]
    return sets + (DRY_RUN + DRY_RUN_PRESET[preset] if dry_run else [])


@dataclass
class _Check:
    """One call of the check: where it works and what it has measured (``result``, written to
    ``out`` after every measurement)."""

    out: Path
    tmp: Path
    device: str
    dry_run: bool
    train_steps: int
    sample_steps: int
    compiled: bool
    batch_sizes: tuple[int, ...]
    result: dict
    trained: bool = False

    def __post_init__(self):
        self.sd = stand_ins(self.tmp / "sd", self.dry_run)
        size = (32, 48) if self.dry_run else (512, 1024)
        self.folder, self.listing = synthetic_videos(self.tmp, *size)
        self.peak = self.result["bf16_peak_tflops"]

    def save(self, row: dict | None = None) -> None:
        """Write what is measured so far; ``row``, the latest measurement, to stderr."""
        if row is not None:
            print(json.dumps(row), file=sys.stderr, flush=True)
        self.result["sampling_ratios_over_cmd"] = gpu_timing.sampling_ratios(self.result)
        save(self.out, self.result)

    def training(self) -> None:
        """Every stage of both presets, the resume check, the 3-D UNet baseline's training."""
        result, steps, device = self.result, self.train_steps, self.device
        result["training"] = []
        for key in ("resume", "baseline_training"):  # from an earlier call, remeasured here
            result.pop(key, None)
        for preset in PRESETS:
            sets, runs = preset_sets(preset, self.sd, self.dry_run), self.tmp / preset
            data = self.listing if preset == WEBVID else self.folder
            for stage in STAGES:
                ae = runs / "autoencoder" if stage != "autoencoder" else None
                row = train_stage(preset, stage, data, runs / stage, sets, steps, device, ae)
                result["training"].append(row)
                self.save(row)
            if preset != WEBVID:  # the small preset: resuming on this device
                resume = resume_check(preset, data, runs / "resume", sets, runs / "autoencoder")
                result["resume"] = resume
                self.save(resume)
        self.trained = True
        sets, runs = preset_sets(WEBVID, self.sd, self.dry_run), self.tmp / WEBVID
        base = gpu_timing.train_unet3d_baseline(
            WEBVID, sets, self.listing, runs / "unet3d", steps, device
        )
        base.update(gpu_timing.training_throughput(base, base["forward_flops"], self.peak))
        result["baseline_training"] = base
        forward = self.webvid_pipeline()[1]  # the content and motion models' (not autoencoder)
        for row in result["training"]:
            if row["preset"] == WEBVID:
                flops = forward.get(f"{row['stage']} model")
                row.update(gpu_timing.training_throughput(row, flops, self.peak))
        self.save(base)

    def webvid_pipeline(self) -> tuple[Path, dict]:
        """The assembled WebVid-size pipeline and its models' FLOPs per call; its stages one
        step each unless the training part trained them."""
        from ..pipelines.assemble import assemble_pipeline

        runs = self.tmp / WEBVID
        if not (runs / "pipeline").is_dir():
            sets = preset_sets(WEBVID, self.sd, self.dry_run)
            for stage in [] if self.trained else STAGES:  # one step: just a pipeline to time
                ae = runs / "autoencoder" if stage != "autoencoder" else None
                train_stage(WEBVID, stage, self.listing, runs / stage, sets, 1, self.device, ae)
            pipe = assemble_pipeline(runs / "autoencoder", runs / "content", runs / "motion")
            self.result["cmd_forward_flops"] = gpu_timing.cmd_forward_flops(pipe)
            pipe.save_pretrained(runs / "pipeline")
        return runs / "pipeline", self.result["cmd_forward_flops"]

    def sampling(self) -> None:
        """The CMD pipeline's seconds per video at the WebVid size, batch by batch."""
        path, flops = self.webvid_pipeline()
        for row in gpu_timing.cmd_sampling(
            path, self.sample_steps, self.device, self.compiled, self.batch_sizes, flops, self.peak
        ):
            self.result["sampling"] = row
            self.save(row)

    def baseline(self, kind: str) -> None:
        """A full-video baseline's seconds per video at the WebVid size, batch by batch."""
        from ..config import load_config
        from ..models.codec import FrameVAE

        config = load_config(WEBVID, preset_sets(WEBVID, self.sd, self.dry_run))
        vae = FrameVAE.from_pretrained(config.autoencoder.vae, config.autoencoder.vae_subfolder)
        rows = self.result.setdefault("baselines", {})[kind] = {}
        for row in gpu_timing.baseline_sampling(
            kind,
            vae,
            config.data,
            self.sample_steps,
            self.batch_sizes,
            self.device,
            self.dry_run,
            self.peak,
        ):
            rows[str(row["batch"])] = row
            self.save(row)


def earlier_result(out: Path, device: str, dry_run: bool) -> dict:
    """What earlier calls wrote to ``out`` on this device (the check can run in several calls,
    one part each: their results add up), else a new result."""
    path = Path(out) / "gpu_check.json"
    if path.is_file():
        earlier = json.loads(path.read_text())
        if earlier.get("device") == device and earlier.get("dry_run") == dry_run:
            return earlier
    return {"device": device, "dry_run": dry_run, "parts": [], "training": [], "sampling": None}


def save(out: Path, result: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=1))
    (out / "gpu_check.md").write_text(to_markdown(result))


def run(
    out: Path,
    dry_run: bool,
    train_steps: int,
    sample_steps: int,
    compiled: bool = True,
    parts: tuple[str, ...] = PARTS,
    batch_sizes: tuple[int, ...] = gpu_timing.BATCH_SIZES,
) -> dict:
    """The check's ``parts`` (:data:`PARTS`), added to what earlier calls on this device wrote
    to ``out`` (``gpu_check.json``, ``gpu_check.md``), saved after every measurement."""
    if unknown := set(parts) - set(PARTS):
        raise ValueError(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    parts = [p for p in parts if not (dry_run and p == "bench")]  # the bench needs a GPU
    device = "cpu" if dry_run else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and not dry_run:
        raise ValueError("no CUDA device here: use --dry-run to check the script on a CPU")
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    out = Path(out)
    result = earlier_result(out, name, dry_run)
    result["parts"] = [p for p in PARTS if p in parts or p in result["parts"]]
    result["bf16_peak_tflops"] = gpu_timing.bf16_peak_tflops(name)
    if {"training", "sampling", *gpu_timing.BASELINES} & set(parts):
        with tempfile.TemporaryDirectory() as tmp:
            settings = (train_steps, sample_steps, compiled, tuple(batch_sizes))
            check = _Check(out, Path(tmp), device, dry_run, *settings, result)
            for part in parts:
                if part in gpu_timing.BASELINES:
                    check.baseline(part)
                elif part != "bench":
                    getattr(check, part)()
    if "bench" in parts:
        from .efficiency import run_benchmark

        bench = run_benchmark(scale="tiny", steps=50, repeats=3, out=out / "bench", device=device)
        result["bench_files"] = {k: str(v) for k, v in bench["files"].items()}
    result["sampling_ratios_over_cmd"] = gpu_timing.sampling_ratios(result)
    save(out, result)
    return result


def to_markdown(result: dict) -> str:
    gib = lambda v: "–" if v is None else f"{v:.1f}"  # noqa: E731
    lines = [
        f"GPU check on {result['device']}" + (" (dry run)" if result["dry_run"] else ""),
        "",
        f"Parts measured: {', '.join(result.get('parts', []))}; bf16 peak of the card: "
        f"{result.get('bf16_peak_tflops') or '–'} TFLOP/s.",
    ]
    lines += gpu_timing.training_markdown(result)
    s = result["sampling"]
    if s and s.get("seconds_per_video") is not None:
        lines += [
            "",
            f"WebVid-size pipeline, one video {s['frames_shape']}, {s['steps']} steps "
            f"per stage, {s['dtype']}: {s['seconds_per_video']} s, peak "
            f"{gib(s['peak_memory_gib'])} GiB",
        ]
        if "compiled_seconds_per_video" in s:
            lines[-1] += (
                f"; compiled (`CMDPipeline.compile`): {s['compiled_seconds_per_video']} s "
                f"(compiling took {s['compile_seconds']} s)"
            )
    lines += gpu_timing.sampling_markdown(result)
    r = result.get("resume")
    if r:
        lines += [
            "",
            f"`train content --resume` on this device ({r['preset']}): "
            f"{'resumed to step ' + str(r['resumed_to']) if r['resumed_to'] else 'failed'}",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/gpu")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument(
        "--parts",
        default="all",
        help=f"comma-separated, of {', '.join((*PARTS, *PART_GROUPS))} (default: all); results "
        "of other parts already in --out from this device are kept",
    )
    parser.add_argument("--batch-sizes", default="1,4", help="sampling batch sizes")
    parser.add_argument(
        "--train-steps", type=int, default=gpu_timing.SKIP_STEPS + 5, help="steps per stage"
    )
    parser.add_argument("--sample-steps", type=int, default=50)
    parser.add_argument(
        "--no-compile", action="store_true", help="skip timing the compiled pipeline"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    try:
        parts = parse_parts(args.parts)
    except ValueError as error:
        parser.error(str(error))
    sizes = args.batch_sizes.split(",")
    if not all(b.strip().isdigit() and int(b) > 0 for b in sizes):
        parser.error(f"--batch-sizes takes positive integers, e.g. 1,4; got {args.batch_sizes!r}")
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    result = run(
        Path(args.out),
        args.dry_run,
        args.train_steps,
        2 if args.dry_run else args.sample_steps,
        compiled=not args.no_compile,
        parts=parts,
        batch_sizes=tuple(int(b) for b in sizes),
    )
    print(to_markdown(result))
    print(f"gpu check: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

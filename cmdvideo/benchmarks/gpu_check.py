"""The GPU check: every stage of both paper presets trained for a few steps at full model size
(reduced batch, bf16, the preset's checkpointing), one WebVid-size video sampled with the
assembled pipeline, and the tiny efficiency benchmark on the device — step times, seconds per
video and peak memory, written to ``results/gpu/``. Weights are random (none can be downloaded):
Stable Diffusion's VAE, UNet and CLIP are built from their published configurations.

    python -m cmdvideo.benchmarks.gpu_check --out results/gpu          # one GPU, < 10 min
    python -m cmdvideo.benchmarks.gpu_check --dry-run --out /tmp/gpu   # same path, tiny sizes, CPU

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
from pathlib import Path

import torch

STAGES = ("autoencoder", "content", "motion")
# Only what stands in for downloads, and the reduced batch.
PRESETS = {
    "webvid-latent-512x1024": ["content.init=null", "content.preset=sd-1.5"],
    "ucf101-pixel-64": [],
}
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
    "webvid-latent-512x1024": [
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


def _peak_memory_gib(device: str) -> float | None:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return None


def _reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


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
    runs, for ``steps`` steps; step time and peak memory."""
    from ..config import load_config
    from ..training.run import train

    config = load_config(preset, [*sets, f"data.source={data}", f"train.max_steps={steps}"])
    _reset_peak(device)
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
        "peak_memory_gib": _peak_memory_gib(device),
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


def _seconds_per_video(pipe, call: dict, device: str) -> float:
    """Median of 3 calls (the caller has warmed the pipeline up)."""
    from .measure import median_seconds

    return round(median_seconds(lambda: pipe(**call), 3, device, warmup=0), 3)


def sample_video(pipeline: Path, steps: int, device: str, compiled: bool = True) -> dict:
    """One video from an assembled pipeline (random weights), bf16 on a GPU: seconds (median of
    3) and peak memory, then the same with the denoisers compiled (``CMDPipeline.compile``;
    the compile time beside it)."""
    from ..pipelines.cmd import CMDPipeline

    pipe = CMDPipeline.from_pretrained(pipeline).to(device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    pipe.to(dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    call = dict(
        prompt="a red circle moving left",
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(0),
    )
    pipe(**{**call, "num_inference_steps": 1})  # warm-up
    _reset_peak(device)
    row = {
        "frames_shape": list(pipe(**call).frames.shape),
        "steps": steps,
        "dtype": str(dtype),
        "peak_memory_gib": _peak_memory_gib(device),
        "seconds_per_video": _seconds_per_video(pipe, call, device),
    }
    if compiled:
        start = time.perf_counter()
        pipe.compile()
        pipe(**{**call, "num_inference_steps": 1})  # the compiler runs here
        row["compile_seconds"] = round(time.perf_counter() - start, 1)
        row["compiled_seconds_per_video"] = _seconds_per_video(pipe, call, device)
    return row


def run(
    out: Path, dry_run: bool, train_steps: int, sample_steps: int, compiled: bool = True
) -> dict:
    device = "cpu" if dry_run else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and not dry_run:
        raise ValueError("no CUDA device here: use --dry-run to check the script on a CPU")
    result = {
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        "dry_run": dry_run,
        "training": [],
        "sampling": None,
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        parts = stand_ins(tmp / "sd", dry_run)
        folder, listing = synthetic_videos(tmp, *((32, 48) if dry_run else (512, 1024)))
        for preset, sets in PRESETS.items():
            data = listing if preset.startswith("webvid") else folder
            sets = [
                *sets,
                "train.batch_size=1",
                "train.preview_every=0",
                "train.log_every=1",
                "train.checkpoint_every=1000000",
                "data.num_workers=0",
            ]
            if preset.startswith("webvid"):
                sets += [
                    f"autoencoder.vae={parts['vae']}",
                    f"content.text_encoder={parts['text']}",
                    f"motion.text_encoder={parts['text']}",
                ]
            if dry_run:
                sets += DRY_RUN + DRY_RUN_PRESET[preset]
            runs = tmp / preset
            for stage in STAGES:
                ae = runs / "autoencoder" if stage != "autoencoder" else None
                row = train_stage(preset, stage, data, runs / stage, sets, train_steps, device, ae)
                result["training"].append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
            if not preset.startswith("webvid"):  # the small preset: resuming on this device
                result["resume"] = resume_check(
                    preset, data, runs / "resume", sets, runs / "autoencoder"
                )
                print(json.dumps(result["resume"]), file=sys.stderr, flush=True)
            if preset.startswith("webvid"):
                from ..pipelines.assemble import assemble_pipeline

                assemble_pipeline(
                    runs / "autoencoder", runs / "content", runs / "motion"
                ).save_pretrained(runs / "pipeline")
                result["sampling"] = sample_video(runs / "pipeline", sample_steps, device, compiled)
                print(json.dumps(result["sampling"]), file=sys.stderr, flush=True)
    if not dry_run:
        from ..benchmarks.efficiency import run_benchmark

        bench = run_benchmark(scale="tiny", steps=50, repeats=3, out=out / "bench", device=device)
        result["bench_files"] = {k: str(v) for k, v in bench["files"].items()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=1))
    (out / "gpu_check.md").write_text(to_markdown(result))
    return result


def to_markdown(result: dict) -> str:
    gib = lambda v: "–" if v is None else f"{v:.1f}"  # noqa: E731
    lines = [
        f"GPU check on {result['device']}" + (" (dry run)" if result["dry_run"] else ""),
        "",
        "| preset | stage | steps | s / step | peak memory (GiB) |",
        "|---|---|---:|---:|---:|",
    ]
    for r in result["training"]:
        lines.append(
            f"| {r['preset']} | {r['stage']} | {r['steps']} | "
            f"{r['seconds_per_step']} | {gib(r['peak_memory_gib'])} |"
        )
    s = result["sampling"]
    if s:
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
    parser.add_argument("--train-steps", type=int, default=4)
    parser.add_argument("--sample-steps", type=int, default=50)
    parser.add_argument(
        "--no-compile", action="store_true", help="skip timing the compiled pipeline"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run(
        Path(args.out),
        args.dry_run,
        args.train_steps,
        2 if args.dry_run else args.sample_steps,
        compiled=not args.no_compile,
    )
    print(to_markdown(result))
    print(f"gpu check: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

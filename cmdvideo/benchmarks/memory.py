"""Training memory per stage of a paper preset, with and without gradient checkpointing: will a
preset's defaults fit a GPU? Measured on the CPU at a reduced frame size and extrapolated.

What is counted, per training step of batch B:

- *static*: fp32 weights, gradients, AdamW's two moments and the EMA copy of every trainable
  parameter (16 + 4 bytes each), plus the frozen models' weights (4 bytes each: the frame VAE,
  the autoencoder of the diffusion stages, CLIP).
- *activations*: what autograd keeps for the backward pass — every tensor saved by the forward
  (deduplicated by storage), under bf16 autocast, with the memory-efficient attention a GPU runs
  (SDPA's flash kernel, which keeps no N×N matrix); with checkpointing: the inputs each
  checkpointed block keeps, the rest of the graph, and the largest block recomputed at once.

Each stage is measured in a fresh process at batch 1 and 2, which tells the per-sample
activations from what does not grow with the batch (autocast's bf16 copies of the weights).
Per-sample activations grow linearly with the number of tokens (frames × height × width) for
every layer here (attention kernels that store no N×N matrix included), so they are measured at
1/4 of the frame's height and width and scaled; the 1/8 measurement, scaled the same way,
checks that (linearity ≈ 1). The motion DiT, whose tokens grow with h + w, is measured at full
size. Allocator overhead and fragmentation are not counted: leave 10-20 % headroom.

    python -m cmdvideo.benchmarks.memory --out results/memory         # minutes on a CPU
    python -m cmdvideo.benchmarks.memory --dry-run                    # tiny config, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

GIB = 2**30
PRESETS = ("webvid-latent-512x1024", "ucf101-pixel-64")


class SavedTensors:
    """Bytes of the distinct storages autograd saves for backward while active."""

    def __init__(self):
        self.storages: dict[int, int] = {}

    def pack(self, tensor: torch.Tensor):
        storage = tensor.untyped_storage()
        self.storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    @property
    def bytes(self) -> int:
        return sum(self.storages.values())

    @contextlib.contextmanager
    def recording(self):
        with torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t):
            yield self


class CheckpointProbe:
    """A ``gradient_checkpointing_func`` that checkpoints as diffusers does (non-reentrant) and
    records what checkpointing keeps (each block's inputs) and the largest block's own saved
    activations (what one recomputation holds at once)."""

    def __init__(self):
        self.kept: dict[int, int] = {}
        self.largest_block = 0

    def __call__(self, module, *args):
        for a in args:
            if torch.is_tensor(a):
                self.kept[a.untyped_storage().data_ptr()] = a.untyped_storage().nbytes()
        inner = SavedTensors()
        with torch.enable_grad(), inner.recording():  # one uncheckpointed run, to measure it
            module(
                *[
                    a.detach().requires_grad_()
                    if torch.is_tensor(a) and a.is_floating_point()
                    else a
                    for a in args
                ]
            )
        self.largest_block = max(self.largest_block, inner.bytes)
        return torch.utils.checkpoint.checkpoint(module.__call__, *args, use_reentrant=False)


def activation_bytes(model: nn.Module, forward, checkpointing: bool) -> int:
    """Bytes kept for backward by ``forward()`` (a closure running ``model``), bf16 autocast."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    probe = CheckpointProbe()
    if checkpointing:
        model.enable_gradient_checkpointing(probe)
    else:
        model.disable_gradient_checkpointing()
    saved = SavedTensors()
    with (
        torch.autocast("cpu", dtype=torch.bfloat16),
        sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]),
        saved.recording(),
    ):
        out = forward()
    del out
    kept = saved.bytes + sum(v for k, v in probe.kept.items() if k not in saved.storages)
    return kept + (probe.largest_block if checkpointing else 0)


def _params(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


STAGES = ("autoencoder", "content", "motion")


def stage_model(preset: str, stage: str, scale: int):
    """(trainable model, frozen parameter count, forward closure at 1/``scale`` of the frame
    size and batch 1, full-size tokens / these tokens, the config) of one stage; only that
    stage's model is built (a paper-size model and its activations fill a CPU's memory)."""
    from ..config import load_config
    from ..models.autoencoder import CMDAutoencoder, autoencoder_preset
    from .baselines import STABLE_DIFFUSION_VAE

    config = load_config(preset)
    latent = bool(config.autoencoder.vae)
    f = 2 ** (len(STABLE_DIFFUSION_VAE["block_out_channels"]) - 1) if latent else 1
    c = STABLE_DIFFUSION_VAE["latent_channels"] if latent else 3
    t, h, w = config.data.num_frames, config.data.height // f, config.data.width // f
    sh, sw = max(h // scale, 8), max(w // scale, 8)
    ratio = (h * w) / (sh * sw)
    ae_kwargs = {**autoencoder_preset(config.autoencoder.preset), **config.autoencoder.overrides}
    with torch.device("meta"):
        ae_params = _params(CMDAutoencoder(**ae_kwargs))
    frozen_text = config.content.text_encoder not in (None, "builtin")
    text = "text" in config.content.condition
    clip = 123_060_480 if text and frozen_text else 0  # CLIP ViT-L/14's text model
    text_width = (768 if frozen_text else 64) if text else 0  # CLIP-L, or the word encoder
    classes = 101 if "class" in config.content.condition else 0

    def conditions(b: int):
        states = torch.randn(b, 77, text_width) if text_width else None
        return (
            torch.full((b,), 500),
            states,
            None if states is None else states.mean(1),
            torch.zeros(b, dtype=torch.long) if classes else None,
        )

    sizes = _Sizes(c, t, h, w, sh, sw, ratio)
    if stage == "autoencoder":
        vae_params = 83_653_863 if latent else 0  # SD's AutoencoderKL (frozen, latent mode)
        ae = CMDAutoencoder(**ae_kwargs)
        forward = lambda b: ae(torch.randn(b, c, t, sh, sw)).reconstruction  # noqa: E731
        return ae, vae_params, forward, ratio, config
    if stage == "content":
        content, forward = _content_stage(config, sizes, classes, text_width, conditions)
        return content, ae_params + clip, forward, ratio, config
    motion, forward = _motion_stage(config, sizes, ae_kwargs, classes, text_width, conditions)
    return motion, ae_params + clip, forward, 1.0, config


@dataclass(frozen=True)
class _Sizes:
    """A stage's input sizes: channels, frames, full (h, w), measured (sh, sw), their ratio."""

    c: int
    t: int
    h: int
    w: int
    sh: int
    sw: int
    ratio: float


def _content_stage(config, sizes: _Sizes, classes: int, text_width: int, conditions):
    """The content model of a preset at the measured size, and its forward at batch b."""
    from ..models.content import build_content_dit, build_content_unet

    c, sh, sw = sizes.c, sizes.sh, sizes.sw
    build = build_content_dit if config.content.backbone == "dit" else build_content_unet
    content = build(
        config.content.preset, c, (sh, sw), classes, config.content.overrides, text_width
    )

    def content_forward(b: int):
        timestep, states, pooled, labels = conditions(b)
        frame = torch.randn(b, c, sh, sw)
        if config.content.backbone == "dit":
            return content(frame, timestep, labels, pooled)
        hidden = states if states is not None else torch.zeros(b, 1, 768)
        return content(frame, timestep, encoder_hidden_states=hidden, class_labels=labels).sample

    return content, content_forward


def _motion_stage(config, sizes: _Sizes, ae_kwargs: dict, classes, text_width, conditions):
    """The motion DiT of a preset and its forward at batch b. Its tokens grow with h + w, not
    h * w: measured at full size directly."""
    from ..models.motion_dit import MotionDiT, motion_dit_preset

    c, t, h, w = sizes.c, sizes.t, sizes.h, sizes.w
    motion = MotionDiT(
        **{**motion_dit_preset(config.motion.preset), **config.motion.overrides},
        motion_channels=ae_kwargs["motion_channels"],
        content_channels=c,
        num_classes=classes if "class" in config.motion.condition else 0,
        text_embed_dim=text_width,
    )
    p = ae_kwargs["patch_size"]

    def motion_forward(b: int):
        timestep, _, pooled, labels = conditions(b)
        latent_in = torch.randn(b, ae_kwargs["motion_channels"], t, h // p + w // p)
        return motion(latent_in, timestep, torch.randn(b, c, h, w), labels, pooled)

    return motion, motion_forward


def measure_job(preset: str, stage: str, scale: int) -> dict:
    """Bytes kept for backward at batch 1 and 2, plain and checkpointed, of one stage at
    1/``scale`` of the frame size: the batch-independent part (autocast's bf16 copies of the
    weights) and the per-sample part (activations) are told apart by the two batches."""
    model, frozen, forward, ratio, config = stage_model(preset, stage, scale)
    model.train()
    out = {
        "params": _params(model),
        "frozen_params": frozen,
        "ratio": ratio,
        "batch_size": config.train.batch_size,
    }
    for kind in ("plain", "checkpointed"):
        b1, b2 = (
            activation_bytes(model, lambda b=b: forward(b), kind == "checkpointed") for b in (1, 2)
        )
        out[kind] = {"per_sample": b2 - b1, "constant": 2 * b1 - b2}
    return out


def _isolated(preset: str, stage: str, scale: int) -> dict:
    """``measure_job`` in a fresh process: one paper-size model in memory at a time."""
    import subprocess

    argv = [sys.executable, "-m", "cmdvideo.benchmarks.memory", "--job", preset, stage, str(scale)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{preset} {stage} 1/{scale} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_preset(preset: str, scales=(4, 8)) -> dict:
    """The memory table of one preset (see the module docstring)."""
    rows = {}
    for stage in STAGES:
        near, far = (_isolated(preset, stage, s) for s in scales)
        print(f"{preset} {stage}: {near} / {far}", file=sys.stderr, flush=True)
        batch = near["batch_size"]
        row = {"params_m": near["params"] / 1e6, "frozen_params_m": near["frozen_params"] / 1e6}
        for kind in ("plain", "checkpointed"):
            per_sample = near[kind]["per_sample"] * near["ratio"]  # scaled to the full size
            far_scaled = far[kind]["per_sample"] * far["ratio"]
            row[f"{kind}_linearity"] = round(far_scaled / max(per_sample, 1), 3)
            row[f"activations_{kind}_gib"] = (per_sample * batch + near[kind]["constant"]) / GIB
        row["static_gib"] = (row["params_m"] * 1e6 * 20 + row["frozen_params_m"] * 1e6 * 4) / GIB
        for kind in ("plain", "checkpointed"):
            row[f"total_{kind}_gib"] = row["static_gib"] + row[f"activations_{kind}_gib"]
        rows[stage] = row
    from ..config import load_config

    config = load_config(preset)
    return {
        "preset": preset,
        "batch_size": config.train.batch_size,
        "gradient_checkpointing": config.train.gradient_checkpointing,
        "stages": rows,
    }


def to_markdown(results: list[dict]) -> str:
    lines = [
        "Training memory per GPU, estimated (`python -m cmdvideo.benchmarks.memory`): static = "
        "fp32 weights + grads + AdamW + EMA of the trained model and the frozen models' weights;"
        " activations under bf16 autocast with memory-efficient attention, measured at 1/4 of "
        "the frame size and scaled (linearity: the 1/8-size measurement scaled the same way, "
        "relative). GiB.",
        "",
        "| preset (batch) | stage | trained params | static | activations | total | with "
        "checkpointing: activations | total | linearity |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for stage, r in result["stages"].items():
            lines.append(
                f"| {result['preset']} ({result['batch_size']}) | {stage} | {r['params_m']:.1f} M"
                f" | {r['static_gib']:.1f} | {r['activations_plain_gib']:.1f} | "
                f"{r['total_plain_gib']:.1f} | {r['activations_checkpointed_gib']:.1f} | "
                f"{r['total_checkpointed_gib']:.1f} | {r['plain_linearity']:.2f} / "
                f"{r['checkpointed_linearity']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="outputs/memory", help="folder for memory.{json,md}")
    parser.add_argument("--preset", action="append", choices=PRESETS + ("tiny",), default=None)
    parser.add_argument("--dry-run", action="store_true", help="the tiny config only")
    parser.add_argument("--job", nargs=3, help=argparse.SUPPRESS)  # worker: PRESET STAGE SCALE
    args = parser.parse_args(argv)
    if args.job:
        print(json.dumps(measure_job(args.job[0], args.job[1], int(args.job[2]))))
        return 0
    presets = ["tiny"] if args.dry_run else (args.preset or list(PRESETS))
    start = time.perf_counter()
    results = [measure_preset(p, scales=(1, 2) if p == "tiny" else (4, 8)) for p in presets]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "memory.json").write_text(json.dumps(results, indent=1))
    (out / "memory.md").write_text(to_markdown(results))
    print(to_markdown(results))
    print(f"memory: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

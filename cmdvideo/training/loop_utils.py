"""The training loop's helpers: the ranks' weight fingerprint, the list of
checkpoints, the end of a multi-process run, durations as people read them, the curve."""

from __future__ import annotations

import gc
import json
import math
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import torch
import torch.distributed as dist

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"


def parameter_fingerprint(params: list[torch.Tensor]) -> torch.Tensor:
    """(2,) float64: a position-weighted sum and the sum of squares of ``params``; equal for
    equal weights (the same reductions run on every rank), different otherwise."""
    total = torch.zeros(2, dtype=torch.float64, device=params[0].device)
    for i, p in enumerate(params, start=1):
        value = p.detach().double()
        total[0] += i * value.sum()
        total[1] += (value * value).sum()
    return total


def rng_probe(device) -> torch.Tensor:
    """(4,) integers the global CPU RNG would draw next, without drawing them."""
    generator = torch.Generator()
    generator.set_state(torch.get_rng_state())
    return torch.randint(0, 1000, (4,), generator=generator).to(device)


def check_ranks_in_sync(accelerator, params: list, step: int) -> list[list[float]]:
    """Every rank's parameter fingerprint; they must be equal (gradients synchronised).

    Raises:
        RuntimeError: the ranks hold different weights.
    """
    prints = accelerator.gather(parameter_fingerprint(params)[None]).cpu()  # (ranks, 2)
    if not all(torch.equal(prints[0], row) for row in prints):
        raise RuntimeError(
            f"after step {step} the {accelerator.num_processes} processes hold different "
            f"weights ({prints.tolist()}): gradients are not being synchronised"
        )
    return prints.tolist()


def list_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (half-written ``.tmp-*`` folders are ignored)."""
    if not checkpoint_dir.is_dir():
        return []
    found = [
        p
        for p in checkpoint_dir.iterdir()
        if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and (p / STATE_FILE).is_file()
    ]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]))


def end_process_group(barrier: bool = True) -> None:
    """End a multi-process run in order, while the interpreter is fully alive: a barrier (when
    every rank got here), collect what still holds the process group (DDP modules), destroy
    it. What every ``cmdvideo`` command does last under torchrun / ``accelerate launch``; a
    no-op in a single process."""

    if not (dist.is_available() and dist.is_initialized()):
        return
    if barrier:
        dist.barrier()
    gc.collect()
    dist.destroy_process_group()
    gc.collect()


def format_duration(seconds: float) -> str:
    """A duration as people read it: "45 s", "12 min", "7 h 05 min"."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def plot_training_curve(metrics_path: Path, out_path: Path) -> Path | None:
    """Loss (log scale) and any preview metrics (e.g. PSNR) against steps, as a PNG."""

    matplotlib.use("Agg")

    records = [json.loads(ln) for ln in Path(metrics_path).read_text().splitlines() if ln]
    losses = [(r["step"], r["loss"]) for r in records if "loss" in r and math.isfinite(r["loss"])]
    extra_keys = sorted({k for r in records for k in r if k.startswith("preview/")})
    split = next((r["preview_split"] for r in records if "preview_split" in r), "held-out")
    if not losses:
        return None
    fig, axes = plt.subplots(1, 1 + len(extra_keys), figsize=(5 * (1 + len(extra_keys)), 3.5))
    axes = list(axes) if extra_keys else [axes]
    axes[0].plot(*zip(*losses))
    axes[0].set(xlabel="step", ylabel="training loss", yscale="log", title="loss")
    for ax, key in zip(axes[1:], extra_keys):
        points = [(r["step"], r[key]) for r in records if key in r]
        ax.plot(*zip(*points), marker="o")
        ax.set(xlabel="step", ylabel=key.split("/", 1)[1], title=f"{key} ({split} data)")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path

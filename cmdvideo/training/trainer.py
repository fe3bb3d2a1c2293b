"""One Accelerate training loop for every CMD stage (autoencoder now; content and motion next).

What a stage supplies (see :class:`Stage`): the trainable model, a loss on a batch, previews,
and how to save the final model folder. What the loop supplies: devices and processes
(``accelerate launch`` for many GPUs/nodes), mixed precision, gradient accumulation and
clipping, EMA, LR schedule, atomic checkpoints with exact resume, progress, a JSONL metrics log
(TensorBoard too when installed), and a clean stop when the loss stops being finite.

Output folder layout::

    OUT/config.yaml            resolved config
    OUT/metrics.jsonl          one JSON object per logged step / event
    OUT/checkpoints/checkpoint-000500/   accelerate state + trainer_state.json
    OUT/previews/step-000500.{png,gif,mp4}
    OUT/<model folders>        written by the stage at the end (EMA weights)
    OUT/snapshots/step-000500/ the same every train.snapshot_every steps (when set)
    OUT/tensorboard/           when tensorboard is installed
    OUT/training_curve.png
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import shutil
import sys
import time
from abc import ABC, abstractmethod
from collections import Counter
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import ProjectConfiguration, set_seed
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from ..config import Config
from ..data import collate_videos

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept untouched."""


class Objective(nn.Module):
    """What the trainer prepares (DDP wrapping, mixed-precision autocast) and calls: a stage's
    trainable modules as submodules, and ``forward(batch) -> (loss, extras)``.

    Every model call of a training step happens inside this forward, so DDP synchronises the
    gradients of every trainable module and autocast covers the frozen encoders too. Frozen
    parts (the autoencoder of the diffusion stages, a frozen text encoder, a frame VAE) stay
    with the stage: no parameters here, nothing synchronised, nothing in the checkpoints.
    """

    def __init__(self, stage: Stage, **modules: nn.Module):
        super().__init__()
        object.__setattr__(self, "stage", stage)  # not a submodule
        for name, module in modules.items():
            self.add_module(name, module)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        return self.stage.objective(self, batch)


class Stage(ABC):
    """What differs between CMD's training stages."""

    name: str = "stage"

    @abstractmethod
    def model(self) -> Objective:
        """The trainable :class:`Objective` (built once, after the seed is set)."""

    @abstractmethod
    def objective(self, modules: Objective, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss for a batch (already on the right device) and extra numbers to log,
        computed with ``modules`` (the objective's own submodules: call them, never the
        wrapped model's)."""

    def preview(self, model: Objective, batch: dict, out_dir: Path, step: int) -> dict[str, float]:
        """Write preview files for ``batch`` (EMA weights loaded); return metrics to log."""
        return {}

    @abstractmethod
    def save_model(self, model: Objective, out_dir: Path) -> list[Path]:
        """Write the final loadable model folder(s) under ``out_dir``; return their paths."""

    def after_training(self, out_dir: Path, dataset, device) -> dict | None:
        """Work on the saved model once training is over (main process only, e.g. measuring
        the autoencoder's motion scale); returns numbers to log and report."""
        return None


class EpochShuffleSampler(Sampler[int]):
    """A permutation per epoch from ``(seed, epoch)`` only, so a resumed run sees the same order.

    The trainer assigns ``epoch`` itself. There is deliberately no ``set_epoch`` method:
    Accelerate calls that with its own per-DataLoader-object iteration count, which restarts at
    0 for the fresh loader ``skip_first_batches`` makes on resume and would replay epoch 0.
    """

    def __init__(self, length: int, seed: int, shuffle: bool = True):
        self.length, self.seed, self.shuffle, self.epoch = length, seed, shuffle, 0

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.length))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.length, generator=g).tolist())


def parameter_fingerprint(params: list[torch.Tensor]) -> torch.Tensor:
    """(2,) float64: a position-weighted sum and the sum of squares of ``params``; equal for
    equal weights (the same reductions run on every rank), different otherwise."""
    total = torch.zeros(2, dtype=torch.float64, device=params[0].device)
    for i, p in enumerate(params, start=1):
        value = p.detach().double()
        total[0] += i * value.sum()
        total[1] += (value * value).sum()
    return total


def _rng_probe(device) -> torch.Tensor:
    """(4,) integers the global CPU RNG would draw next, without drawing them."""
    generator = torch.Generator()
    generator.set_state(torch.get_rng_state())
    return torch.randint(0, 1000, (4,), generator=generator).to(device)


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


class Trainer:
    """Train one stage.

    Args:
        stage: the stage (model, loss, previews, saving).
        train_dataset: yields dicts with at least "video"; optional "skipped" lists.
        config: full config; ``config.train`` drives the loop and is saved with every run.
        out_dir: output folder (created).
        preview_batch: a fixed batch (e.g. held-out videos) for previews; None disables them.
        preview_split: what the preview batch is ("held-out": never trained on; "training"),
            logged and written on the training curve's preview panels.
    """

    ESTIMATE_AFTER = 5  # steps timed (after the first, which includes start-up) for the estimate

    def __init__(
        self,
        stage: Stage,
        train_dataset: Dataset,
        config: Config,
        out_dir: str | Path,
        preview_batch: dict | None = None,
        preview_split: str = "held-out",
    ):
        self.stage, self.dataset, self.config = stage, train_dataset, config
        self.cfg = config.train
        self.out_dir = Path(out_dir)
        self.checkpoint_dir = self.out_dir / "checkpoints"
        self.preview_batch = preview_batch
        self.preview_split = preview_split
        log_with = "tensorboard" if importlib.util.find_spec("tensorboard") else None
        # Accelerate keeps process-wide state; reset the per-run part (mixed precision, ...) so
        # that several stages can be trained one after another in one process. The
        # distributed set-up (PartialState) is kept.
        AcceleratorState._reset_state()
        if self.cfg.allow_tf32 and torch.cuda.is_available():  # Ampere+: TF32 matrix products
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.accelerator = Accelerator(
            mixed_precision=self.cfg.mixed_precision,
            gradient_accumulation_steps=self.cfg.gradient_accumulation_steps,
            log_with=log_with,
            project_config=ProjectConfiguration(
                project_dir=str(self.out_dir), logging_dir=str(self.out_dir / "tensorboard")
            ),
        )

    # -- bookkeeping -----------------------------------------------------------------------

    def _log(self, record: dict) -> None:
        if not self.accelerator.is_main_process:
            return
        with open(self.out_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        numbers = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
        if self.accelerator.trackers and "step" in record:
            self.accelerator.log(numbers, step=record["step"])

    def _truncate_metrics(self, step: int) -> None:
        """On resume, drop log lines written after the checkpoint we resume from."""
        path = self.out_dir / "metrics.jsonl"
        if not self.accelerator.is_main_process or not path.is_file():
            return
        kept = [ln for ln in path.read_text().splitlines() if json.loads(ln).get("step", 0) <= step]
        path.write_text("".join(ln + "\n" for ln in kept))

    def _save_checkpoint(self, step: int, state: dict) -> Path:
        """Atomic: write into a temporary folder, then rename; older ones pruned afterwards."""
        acc = self.accelerator
        final = self.checkpoint_dir / f"{CHECKPOINT_PREFIX}{step:06d}"
        tmp = self.checkpoint_dir / f".tmp-{CHECKPOINT_PREFIX}{step:06d}"
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        acc.wait_for_everyone()
        acc.save_state(str(tmp))  # every rank writes its part (its RNG states)
        acc.wait_for_everyone()  # ... before the folder is renamed
        if acc.is_main_process:
            (tmp / STATE_FILE).write_text(json.dumps(state))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            for old in list_checkpoints(self.checkpoint_dir)[: -self.cfg.keep_checkpoints]:
                shutil.rmtree(old)
        acc.wait_for_everyone()
        return final

    def _skip_counts(self, runtime: dict[str, str]) -> dict[str, int]:
        """Skipped files by reason: found when the dataset was scanned + found while decoding."""
        counts = Counter(getattr(self.dataset, "skip_counts", dict)())
        counts.update(runtime.values())
        return dict(counts)

    # -- the loop --------------------------------------------------------------------------

    def train(self, resume: bool = False) -> Path:
        """Run until ``config.train.max_steps`` optimizer steps; returns the output folder.

        Raises:
            TrainingDivergedError: the loss became NaN/inf (checkpoints before it are kept).
            FileNotFoundError: ``resume`` without a checkpoint in ``out_dir``.
        """
        cfg, acc = self.cfg, self.accelerator
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if acc.is_main_process:
            self.config.save(self.out_dir / "config.yaml")
            for tmp in self.checkpoint_dir.glob(".tmp-*"):  # left by a killed run
                shutil.rmtree(tmp, ignore_errors=True)
        # Every rank draws its own noise, timesteps and condition dropout (seed + rank); the
        # weights start equal anyway (DDP broadcasts rank 0's), and resume restores every
        # rank's own RNG states.
        set_seed(cfg.seed, device_specific=True)

        model = self.stage.model()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            params, lr=cfg.learning_rate, betas=tuple(cfg.adam_betas), weight_decay=cfg.weight_decay
        )
        lr_scheduler = get_scheduler(
            cfg.lr_scheduler,
            optimizer,
            num_warmup_steps=cfg.warmup_steps * acc.num_processes,
            num_training_steps=cfg.max_steps * acc.num_processes,
        )
        sampler = EpochShuffleSampler(len(self.dataset), seed=cfg.seed)
        loader = DataLoader(
            self.dataset,
            batch_size=cfg.batch_size,
            sampler=sampler,
            drop_last=True,
            collate_fn=collate_videos,
            num_workers=self.config.data.num_workers,
        )
        if len(loader) == 0:
            held = getattr(self.dataset, "part", "") == "training"
            raise ValueError(
                f"the dataset has {len(self.dataset)} videos"
                + (" for training (the held-out files are not trained on)" if held else "")
                + f", not enough for one batch of {cfg.batch_size}; lower train.batch_size "
                "(e.g. --set train.batch_size=1)" + (" or data.heldout_files" if held else "")
            )
        model, optimizer, loader, lr_scheduler = acc.prepare(model, optimizer, loader, lr_scheduler)
        ema = EMAModel(params, decay=cfg.ema_decay)
        acc.register_for_checkpointing(ema)
        if acc.trackers == [] and acc.log_with:
            acc.init_trackers(self.stage.name)

        step, epoch, batch_in_epoch, runtime_skips = 0, 0, 0, {}
        if resume:
            checkpoints = list_checkpoints(self.checkpoint_dir)
            if not checkpoints:
                raise FileNotFoundError(
                    f"--resume: no checkpoint in {self.checkpoint_dir}; start without --resume"
                )
            acc.load_state(str(checkpoints[-1]))
            ema.to(device=acc.device)  # the EMA weights come back on the CPU
            state = json.loads((checkpoints[-1] / STATE_FILE).read_text())
            step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
            runtime_skips = dict(state.get("runtime_skips", {}))
            self._truncate_metrics(step)
            logger.info("resumed from %s (step %d)", checkpoints[-1], step)
        else:
            self._log(
                {
                    "event": "start",
                    "step": 0,
                    "dataset_size": len(self.dataset),
                    "skipped": self._skip_counts({}),
                    "num_processes": acc.num_processes,
                    "distributed_type": str(acc.distributed_type.value),
                    "mixed_precision": acc.mixed_precision,
                    "threads": torch.get_num_threads(),
                    "preview_split": self.preview_split,
                    # what each rank's RNG would draw next: different ranks, different draws
                    "rng_check": acc.gather(_rng_probe(acc.device))
                    .view(acc.num_processes, -1)
                    .tolist(),
                }
            )

        def checkpoint_state() -> dict:
            return {
                "step": step,
                "epoch": epoch,
                "batch_in_epoch": batch_in_epoch,
                "runtime_skips": dict(runtime_skips),
            }

        progress = tqdm(
            total=cfg.max_steps,
            initial=step,
            desc=f"train {self.stage.name}",
            disable=not acc.is_main_process,
            dynamic_ncols=True,
        )
        window_start, window_steps = time.perf_counter(), 0
        timed_from, timed_steps = None, 0  # for the time estimate (from the end of a first step)
        reported_skips: dict[str, int] = {}
        while step < cfg.max_steps:
            sampler.epoch = epoch
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            batches = acc.skip_first_batches(loader, batch_in_epoch) if batch_in_epoch else loader
            for batch in batches:
                batch_in_epoch += 1
                for item_skips in batch.get("skipped", []):
                    runtime_skips.update(dict(item_skips))  # path -> reason, each file once
                with acc.accumulate(model):
                    loss, extras = model(batch)  # through DDP and autocast
                    if not torch.isfinite(acc.gather(loss.detach())).all():
                        last = list_checkpoints(self.checkpoint_dir)
                        progress.close()
                        msg = f"loss became {loss.item()} at step {step + 1}; stopped. " + (
                            f"Last good checkpoint: {last[-1]} (resume with --resume after "
                            "lowering the learning rate)"
                            if last
                            else "No checkpoint was written yet."
                        )
                        self._log({"event": "diverged", "step": step + 1, "message": msg})
                        raise TrainingDivergedError(msg)
                    acc.backward(loss)
                    grad_norm = None
                    if acc.sync_gradients and cfg.max_grad_norm:
                        grad_norm = acc.clip_grad_norm_(params, cfg.max_grad_norm)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                if not acc.sync_gradients:
                    continue
                ema.step(params)
                step += 1
                window_steps += 1
                progress.update(1)
                if timed_from is None:
                    timed_from = time.perf_counter()
                elif timed_steps < self.ESTIMATE_AFTER:
                    timed_steps += 1
                    if timed_steps == self.ESTIMATE_AFTER and step < cfg.max_steps:
                        per_step = (time.perf_counter() - timed_from) / timed_steps
                        self._estimate(progress, per_step, step)
                progress.set_postfix(loss=f"{loss.item():.4f}", epoch=epoch)
                if step % cfg.log_every == 0 or step == cfg.max_steps:
                    elapsed = time.perf_counter() - window_start
                    record = {
                        "step": step,
                        "loss": loss.item(),
                        "lr": lr_scheduler.get_last_lr()[0],
                        "steps_per_s": window_steps / max(elapsed, 1e-9),
                        "epoch": epoch,
                    }
                    if grad_norm is not None:
                        record["grad_norm"] = float(grad_norm)
                    record.update(extras)
                    self._log(record)
                    window_start, window_steps = time.perf_counter(), 0
                if (
                    self.preview_batch is not None
                    and cfg.preview_every
                    and (step % cfg.preview_every == 0 or step == cfg.max_steps)
                ):
                    self._preview(model, ema, params, step)
                if cfg.snapshot_every and step % cfg.snapshot_every == 0:
                    self._snapshot(model, ema, params, step)
                if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
                    self._check_ranks_in_sync(params, step)
                    self._save_checkpoint(step, checkpoint_state())
                if step >= cfg.max_steps:
                    break
            else:
                skips = self._skip_counts(runtime_skips)
                if skips and skips != reported_skips:  # once, and again only when it changes
                    progress.write(f"skipped files by reason: {skips}", file=sys.stderr)
                    reported_skips = skips
                self._log({"event": "epoch_end", "step": step, "epoch": epoch, "skipped": skips})
                epoch, batch_in_epoch = epoch + 1, 0
        progress.close()

        fingerprints = self._check_ranks_in_sync(params, step)
        self._log({"event": "end", "step": step, "skipped": self._skip_counts(runtime_skips),
                   "param_fingerprints": fingerprints})  # fmt: skip
        acc.wait_for_everyone()
        self.after_training_result = None
        if acc.is_main_process:  # the model folder is written once
            unwrapped = acc.unwrap_model(model)
            ema.store(params)
            ema.copy_to(params)
            saved = self.stage.save_model(unwrapped, self.out_dir)
            ema.restore(params)
            logger.info("saved %s", ", ".join(str(p) for p in saved))
            self.after_training_result = self.stage.after_training(
                self.out_dir, self.dataset, acc.device
            )
            if self.after_training_result:
                self._log({"event": "after_training", "step": step, **self.after_training_result})
            plot_training_curve(self.out_dir / "metrics.jsonl", self.out_dir / "training_curve.png")
        # Shut the processes down in order while every rank is alive: drop the DDP-wrapped
        # model and optimizer (DDP holds the process group) and collect them now, then destroy
        # the group. Left to interpreter exit, gloo's destructor can deadlock (its worker thread
        # waits for the GIL while the main thread, tearing down, waits for the worker).
        del model, optimizer, loader, lr_scheduler
        acc.wait_for_everyone()
        acc.free_memory()  # the prepared objects Accelerate keeps, then gc.collect()
        acc.end_training()  # trackers, then destroy_process_group
        return self.out_dir

    def _estimate(self, progress, per_step: float, step: int) -> None:
        """One line, once: the time per step measured so far and what the run will take."""
        cfg = self.cfg
        left = (cfg.max_steps - step) * per_step
        every = min(v for v in (cfg.preview_every, cfg.checkpoint_every, cfg.max_steps) if v)
        line = (
            f"about {per_step:.2f} s per step here: {cfg.max_steps:,} steps take "
            f"~{format_duration(cfg.max_steps * per_step)} ({format_duration(left)} to go, plus "
            f"previews and checkpoints every {every:,} steps); --max-steps N trains fewer"
        )
        if self.accelerator.is_main_process:
            progress.write(line, file=sys.stderr)
        self._log({"event": "estimate", "step": step, "seconds_per_step": round(per_step, 4),
                   "expected_seconds": round(cfg.max_steps * per_step, 1)})  # fmt: skip

    def _check_ranks_in_sync(self, params: list, step: int) -> list[list[float]]:
        """Every rank's parameter fingerprint; they must be equal (gradients synchronised).

        Raises:
            RuntimeError: the ranks hold different weights.
        """
        acc = self.accelerator
        prints = acc.gather(parameter_fingerprint(params)[None]).cpu()  # (ranks, 2)
        if not all(torch.equal(prints[0], row) for row in prints):
            raise RuntimeError(
                f"after step {step} the {acc.num_processes} processes hold different weights "
                f"({prints.tolist()}): gradients are not being synchronised"
            )
        return prints.tolist()

    @torch.no_grad()
    def _snapshot(self, model: nn.Module, ema: EMAModel, params: list, step: int) -> Path:
        """``OUT/snapshots/step-NNNNNN``: the model with its EMA weights, as a run folder."""
        folder = self.out_dir / "snapshots" / f"step-{step:06d}"
        if self.accelerator.is_main_process:
            ema.store(params)
            ema.copy_to(params)
            self.stage.save_model(self.accelerator.unwrap_model(model), folder)
            ema.restore(params)
            shutil.copy(self.out_dir / "config.yaml", folder / "config.yaml")
        return folder

    @torch.no_grad()
    def _preview(self, model: nn.Module, ema: EMAModel, params: list, step: int) -> None:
        if not self.accelerator.is_main_process:
            return
        ema.store(params)
        ema.copy_to(params)
        model.eval()
        batch = {
            k: v.to(self.accelerator.device) if torch.is_tensor(v) else v
            for k, v in self.preview_batch.items()
        }
        metrics = self.stage.preview(
            self.accelerator.unwrap_model(model), batch, self.out_dir / "previews", step
        )
        model.train()
        ema.restore(params)
        if metrics:
            self._log({"step": step, **{f"preview/{k}": v for k, v in metrics.items()}})


def end_process_group(barrier: bool = True) -> None:
    """End a multi-process run in order, while the interpreter is fully alive: a barrier (when
    every rank got here), collect what still holds the process group (DDP modules), destroy
    it. What every ``cmdvideo`` command does last under torchrun / ``accelerate launch``; a
    no-op in a single process."""
    import gc

    import torch.distributed as dist

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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

"""One Accelerate training loop for every CMD stage (frame VAE, autoencoder, content, motion,
classifier).

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
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import ProjectConfiguration, set_seed
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..config import Config
from ..data import Epochal
from .loading import EpochShuffleSampler, batches_in_time, training_loader
from .loop_utils import (
    CHECKPOINT_PREFIX,
    STATE_FILE,
    check_ranks_in_sync,
    format_duration,
    list_checkpoints,
    plot_training_curve,
    rng_probe,
)
from .stage import Stage

logger = logging.getLogger(__name__)


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept untouched."""


@dataclass
class _Run:
    """What one call of :meth:`Trainer.train` holds: the prepared objects and where it is."""

    model: nn.Module
    params: list
    optimizer: torch.optim.Optimizer
    lr_scheduler: object
    loader: DataLoader
    sampler: EpochShuffleSampler
    ema: EMAModel
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    runtime_skips: dict = field(default_factory=dict)  # path -> reason, found while decoding

    def state(self) -> dict:
        """What a checkpoint records besides Accelerate's state (trainer_state.json)."""
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "runtime_skips": dict(self.runtime_skips),
        }


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
        counts = Counter(self.dataset.skip_counts())
        counts.update(runtime.values())
        return dict(counts)

    # -- the loop --------------------------------------------------------------------------

    def train(self, resume: bool = False) -> Path:
        """Run until ``config.train.max_steps`` optimizer steps; returns the output folder.

        Raises:
            TrainingDivergedError: the loss became NaN/inf (checkpoints before it are kept).
            FileNotFoundError: ``resume`` without a checkpoint in ``out_dir``.
        """
        acc = self.accelerator
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if acc.is_main_process:
            self.config.save(self.out_dir / "config.yaml")
            for tmp in self.checkpoint_dir.glob(".tmp-*"):  # left by a killed run
                shutil.rmtree(tmp, ignore_errors=True)
        # Every rank draws its own noise, timesteps and condition dropout (seed + rank); the
        # weights start equal anyway (DDP broadcasts rank 0's), and resume restores every
        # rank's own RNG states.
        set_seed(self.cfg.seed, device_specific=True)
        run = self._prepare()
        if resume:
            self._resume(run)
        else:
            self._log_start()
        self._loop(run)
        self._finish(run)
        # Shut the processes down in order while every rank is alive: drop the DDP-wrapped
        # model and optimizer (DDP holds the process group) and collect them now, then destroy
        # the group. Left to interpreter exit, gloo's destructor can deadlock (its worker thread
        # waits for the GIL while the main thread, tearing down, waits for the worker).
        del run
        acc.wait_for_everyone()
        acc.free_memory()  # the prepared objects Accelerate keeps, then gc.collect()
        acc.end_training()  # trackers, then destroy_process_group
        return self.out_dir

    def _prepare(self) -> _Run:
        """The stage's model, optimizer, LR schedule, loader and EMA, prepared by Accelerate."""
        cfg, acc = self.cfg, self.accelerator
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
        loader = training_loader(self.dataset, sampler, cfg.batch_size, self.config.data)
        if len(loader) == 0:
            held = self.dataset.part == "training"
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
        return _Run(model, params, optimizer, lr_scheduler, loader, sampler, ema)

    def _resume(self, run: _Run) -> None:
        """Every prepared object's state, the RNGs and the position from the last checkpoint."""
        acc = self.accelerator
        checkpoints = list_checkpoints(self.checkpoint_dir)
        if not checkpoints:
            raise FileNotFoundError(
                f"--resume: no checkpoint in {self.checkpoint_dir}; start without --resume"
            )
        acc.load_state(str(checkpoints[-1]))
        run.ema.to(device=acc.device)  # the EMA weights come back on the CPU
        state = json.loads((checkpoints[-1] / STATE_FILE).read_text())
        run.step, run.epoch, run.batch_in_epoch = (
            state["step"],
            state["epoch"],
            state["batch_in_epoch"],
        )
        run.runtime_skips = dict(state.get("runtime_skips", {}))
        self._truncate_metrics(run.step)
        logger.info("resumed from %s (step %d)", checkpoints[-1], run.step)

    def _log_start(self) -> None:
        acc = self.accelerator
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
                "rng_check": acc.gather(rng_probe(acc.device)).view(acc.num_processes, -1).tolist(),
            }
        )

    def _loop(self, run: _Run) -> None:
        """Epochs of optimizer steps until ``max_steps``, resuming mid-epoch where it stopped."""
        cfg, acc = self.cfg, self.accelerator
        progress = tqdm(
            total=cfg.max_steps,
            initial=run.step,
            desc=f"train {self.stage.name}",
            disable=not acc.is_main_process,
            dynamic_ncols=True,
        )
        self._timing = {
            "window_start": time.perf_counter(),
            "window_steps": 0,
            "timed_from": None,
            "timed_steps": 0,
        }
        reported_skips: dict[str, int] = {}
        while run.step < cfg.max_steps:
            run.sampler.epoch = run.epoch
            if isinstance(self.dataset, Epochal):
                self.dataset.set_epoch(run.epoch)
            loader = run.loader
            batches = loader
            if run.batch_in_epoch >= len(loader):  # resumed at the end of an epoch
                batches = ()
            elif run.batch_in_epoch:
                batches = acc.skip_first_batches(loader, run.batch_in_epoch)
            timeout = self.config.data.loader_timeout
            for batch in batches_in_time(
                batches, loader, self.dataset, run.batch_in_epoch, timeout
            ):
                run.batch_in_epoch += 1
                for item_skips in batch.get("skipped", []):
                    run.runtime_skips.update(dict(item_skips))  # path -> reason, each file once
                stepped = self._optimizer_step(run, batch, progress)
                if stepped is None:  # accumulating gradients
                    continue
                self._after_step(run, progress, *stepped)
                if run.step >= cfg.max_steps:
                    break
            else:
                skips = self._skip_counts(run.runtime_skips)
                if skips and skips != reported_skips:  # once, and again only when it changes
                    progress.write(f"skipped files by reason: {skips}", file=sys.stderr)
                    reported_skips = skips
                self._log(
                    {"event": "epoch_end", "step": run.step, "epoch": run.epoch, "skipped": skips}
                )
                run.epoch, run.batch_in_epoch = run.epoch + 1, 0
        progress.close()

    def _optimizer_step(self, run: _Run, batch: dict, progress):
        """Forward, backward, clip, step (under gradient accumulation); ``(loss, extras,
        grad_norm)`` when the weights were updated, None while accumulating.

        Raises:
            TrainingDivergedError: the loss of any rank is not finite.
        """
        cfg, acc = self.cfg, self.accelerator
        with acc.accumulate(run.model):
            loss, extras = run.model(batch)  # through DDP and autocast
            if not torch.isfinite(acc.gather(loss.detach())).all():
                last = list_checkpoints(self.checkpoint_dir)
                progress.close()
                msg = f"loss became {loss.item()} at step {run.step + 1}; stopped. " + (
                    f"Last good checkpoint: {last[-1]} (resume with --resume after "
                    "lowering the learning rate)"
                    if last
                    else "No checkpoint was written yet."
                )
                self._log({"event": "diverged", "step": run.step + 1, "message": msg})
                raise TrainingDivergedError(msg)
            acc.backward(loss)
            grad_norm = None
            if acc.sync_gradients and cfg.max_grad_norm:
                grad_norm = acc.clip_grad_norm_(run.params, cfg.max_grad_norm)
            run.optimizer.step()
            run.lr_scheduler.step()
            run.optimizer.zero_grad(set_to_none=True)
        if not acc.sync_gradients:
            return None
        run.ema.step(run.params)
        run.step += 1
        return loss, extras, grad_norm

    def _after_step(self, run: _Run, progress, loss, extras, grad_norm) -> None:
        """Progress, the time estimate, the log, previews, snapshots and checkpoints when due."""
        cfg, step, timing = self.cfg, run.step, self._timing
        timing["window_steps"] += 1
        progress.update(1)
        if timing["timed_from"] is None:
            timing["timed_from"] = time.perf_counter()
        elif timing["timed_steps"] < self.ESTIMATE_AFTER:
            timing["timed_steps"] += 1
            if timing["timed_steps"] == self.ESTIMATE_AFTER and step < cfg.max_steps:
                per_step = (time.perf_counter() - timing["timed_from"]) / timing["timed_steps"]
                self._estimate(progress, per_step, step)
        progress.set_postfix(loss=f"{loss.item():.4f}", epoch=run.epoch)
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            elapsed = time.perf_counter() - timing["window_start"]
            record = {
                "step": step,
                "loss": loss.item(),
                "lr": run.lr_scheduler.get_last_lr()[0],
                "steps_per_s": timing["window_steps"] / max(elapsed, 1e-9),
                "epoch": run.epoch,
            }
            if grad_norm is not None:
                record["grad_norm"] = float(grad_norm)
            record.update(extras)
            self._log(record)
            timing["window_start"], timing["window_steps"] = time.perf_counter(), 0
        due = lambda every: every and (step % every == 0 or step == cfg.max_steps)  # noqa: E731
        if self.preview_batch is not None and due(cfg.preview_every):
            self._preview(run.model, run.ema, run.params, step)
        if cfg.snapshot_every and step % cfg.snapshot_every == 0:
            self._snapshot(run.model, run.ema, run.params, step)
        if due(cfg.checkpoint_every):
            check_ranks_in_sync(self.accelerator, run.params, step)
            self._save_checkpoint(step, run.state())

    def _finish(self, run: _Run) -> None:
        """The ranks' weights checked equal, the end logged, the model folder written once
        with the EMA weights, the stage's after-training work, the curve."""
        acc = self.accelerator
        fingerprints = check_ranks_in_sync(self.accelerator, run.params, run.step)
        self._log(
            {
                "event": "end",
                "step": run.step,
                "skipped": self._skip_counts(run.runtime_skips),
                "param_fingerprints": fingerprints,
            }
        )
        acc.wait_for_everyone()
        self.after_training_result = None
        if acc.is_main_process:  # the model folder is written once
            unwrapped = acc.unwrap_model(run.model)
            run.ema.store(run.params)
            run.ema.copy_to(run.params)
            saved = self.stage.save_model(unwrapped, self.out_dir)
            run.ema.restore(run.params)
            logger.info("saved %s", ", ".join(str(p) for p in saved))
            self.after_training_result = self.stage.after_training(
                self.out_dir, self.dataset, acc.device
            )
            if self.after_training_result:
                self._log(
                    {"event": "after_training", "step": run.step, **self.after_training_result}
                )
            plot_training_curve(self.out_dir / "metrics.jsonl", self.out_dir / "training_curve.png")

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
        self._log(
            {
                "event": "estimate",
                "step": step,
                "seconds_per_step": round(per_step, 4),
                "expected_seconds": round(cfg.max_steps * per_step, 1),
            }
        )

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

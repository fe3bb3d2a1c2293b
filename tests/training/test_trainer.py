"""The shared trainer: learning, exact resume after SIGKILL, NaN stop, checkpoints, logs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import SMALL_AUTOENCODER, fit_fixed_batch, kill_tree, run_isolated
from safetensors.torch import load_file

from cmdvideo.config import load_config
from cmdvideo.data import build_dataset, collate_videos
from cmdvideo.models.codec import VideoCodec
from cmdvideo.training.stages import AutoencoderStage
from cmdvideo.training.trainer import Trainer, TrainingDivergedError, list_checkpoints

TINY = [
    "data.num_frames=8",
    "data.height=16",
    "data.width=16",
    "data.num_videos=64",
    *SMALL_AUTOENCODER,
    "train.batch_size=4",
    "train.warmup_steps=2",
    "train.log_every=1",
    "train.preview_every=0",
    "train.learning_rate=0.002",
]


def tiny_config(*extra):
    return load_config("tiny", TINY + list(extra))


def test_loss_falls_on_a_fixed_batch():
    config = tiny_config("train.lr_scheduler=constant")
    torch.manual_seed(0)
    stage = AutoencoderStage(config)
    batch = collate_videos([build_dataset(config.data)[i] for i in range(4)])
    losses = fit_fixed_batch(stage, batch, steps=40, lr=2e-3)
    assert losses[-1] < 0.3 * losses[0], losses


def test_trainer_writes_model_checkpoints_metrics_previews(tmp_path):
    config = tiny_config(
        "train.max_steps=6",
        "train.checkpoint_every=2",
        "train.keep_checkpoints=2",
        "train.preview_every=3",
    )
    eval_set = build_dataset(config.data, train=False)
    preview = collate_videos([eval_set[i] for i in range(2)])
    Trainer(AutoencoderStage(config), build_dataset(config.data), config, tmp_path, preview).train()

    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == [
        "checkpoint-000004",
        "checkpoint-000006",
    ]  # older ones pruned
    codec = VideoCodec.from_pretrained(tmp_path)
    content, motion = codec.encode(preview["video"])
    assert motion.shape == (2, 4, 8, 8)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert any("preview/psnr" in r for r in records)
    assert {"start", "end"} <= {r.get("event") for r in records}
    for suffix in ("png", "gif", "mp4"):
        assert (tmp_path / "previews" / f"step-000003.{suffix}").stat().st_size > 0
    assert (tmp_path / "training_curve.png").is_file()
    assert load_config(tmp_path / "config.yaml").train.max_steps == 6


class NaNAfter(AutoencoderStage):
    def __init__(self, config, bad_step):
        super().__init__(config)
        self.calls, self.bad_step = 0, bad_step

    def objective(self, modules, batch):
        loss, extras = super().objective(modules, batch)
        self.calls += 1
        return (loss * float("nan") if self.calls >= self.bad_step else loss), extras


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    config = tiny_config("train.max_steps=10", "train.checkpoint_every=2")
    trainer = Trainer(NaNAfter(config, bad_step=4), build_dataset(config.data), config, tmp_path)
    with pytest.raises(TrainingDivergedError, match="loss became nan at step 4.*checkpoint-000002"):
        trainer.train()
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["checkpoint-000002"]
    assert not (tmp_path / "autoencoder").exists()
    last = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "diverged"


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    config = tiny_config("train.max_steps=2")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer(AutoencoderStage(config), build_dataset(config.data), config, tmp_path).train(
            resume=True
        )


def _train_cmd(out, max_steps):
    args = [
        sys.executable,
        "-m",
        "cmdvideo.cli",
        "train",
        "autoencoder",
        "--config",
        "tiny",
        "--out",
        str(out),
        "--max-steps",
        str(max_steps),
    ]
    for item in TINY + ["train.checkpoint_every=3"]:
        args += ["--set", item]
    return args


def _weights(out):
    return load_file(out / "autoencoder" / "diffusion_pytorch_model.safetensors")


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    """Kill -9 mid-run, resume, and end with the weights of a run never interrupted.

    64 videos / batch 4 = 16 batches per epoch, so 40 steps also cross epoch boundaries and the
    resumed run must find its place in the data order.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # same kernels in every process
    steps = 40
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert run_isolated(_train_cmd(full, steps), timeout=600, env=env).returncode == 0

    proc = subprocess.Popen(
        _train_cmd(killed, steps),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    killed_at_step_18 = False
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            done = list_checkpoints(killed / "checkpoints")
            if done and int(done[-1].name.split("-")[1]) >= 18:
                proc.send_signal(signal.SIGKILL)
                killed_at_step_18 = True
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and not killed_at_step_18:  # too slow, or interrupted
            kill_tree(proc)
    assert killed_at_step_18, "the run ended (or ran past 300 s) before it could be killed"
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert not (killed / "autoencoder").exists()
    kept = list_checkpoints(killed / "checkpoints")[-1]
    assert int(kept.name.split("-")[1]) < steps

    resumed = run_isolated(_train_cmd(killed, steps) + ["--resume"], timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = _weights(full), _weights(killed)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)
    # The resumed metrics log has each step exactly once.
    steps_logged = [
        json.loads(ln)["step"]
        for ln in (killed / "metrics.jsonl").read_text().splitlines()
        if "loss" in json.loads(ln)
    ]
    assert steps_logged == list(range(1, steps + 1))


def test_gradient_accumulation_counts_optimizer_steps(tmp_path):
    config = tiny_config(
        "train.max_steps=3", "train.gradient_accumulation_steps=2", "train.checkpoint_every=3"
    )
    Trainer(AutoencoderStage(config), build_dataset(config.data), config, tmp_path).train()
    state = json.loads(
        (tmp_path / "checkpoints" / "checkpoint-000003" / "trainer_state.json").read_text()
    )
    assert state["step"] == 3 and state["batch_in_epoch"] == 6  # two micro-batches per step
    logged = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if "loss" in r] == [1, 2, 3]


def test_snapshots_are_loadable_run_folders(tmp_path):
    config = tiny_config("train.max_steps=4", "train.snapshot_every=2", "train.checkpoint_every=4")
    Trainer(AutoencoderStage(config), build_dataset(config.data), config, tmp_path).train()
    snapshots = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    assert snapshots == ["step-000002", "step-000004"]
    for name in snapshots:
        assert VideoCodec.from_pretrained(tmp_path / "snapshots" / name) is not None
        assert (tmp_path / "snapshots" / name / "config.yaml").is_file()
    last = load_file(
        tmp_path / "snapshots/step-000004/autoencoder/diffusion_pytorch_model.safetensors"
    )
    final = load_file(tmp_path / "autoencoder/diffusion_pytorch_model.safetensors")
    assert all(torch.equal(last[k], final[k]) for k in final)  # the same EMA weights

"""Every stage as two DDP processes on the CPU (gloo): the wrapping many GPUs get.

``torchrun --nproc_per_node 2`` with ``ACCELERATE_USE_CPU=true`` starts two real processes
(``accelerate launch --cpu --num_processes 2`` starts one). Each run must finish, say it ran
as MULTI_CPU with 2 processes, draw different random numbers per rank, end with the same
weights on both ranks (the trainer gathers a fingerprint of every rank's parameters), write
its model folder and report once, and resume to exactly the weights of an uninterrupted run.
"""

import json
import os
import sys

import pytest
import torch
from conftest import run_isolated
from safetensors.torch import load_file

pytestmark = pytest.mark.multiprocess

SMALL = [
    "data.num_frames=8",
    "data.height=16",
    "data.width=16",
    "train.batch_size=2",
    "train.log_every=1",
    "train.checkpoint_every=2",
    "train.preview_every=2",
    "autoencoder.overrides.hidden_size=32",
    "autoencoder.overrides.encoder_depth=1",
    "autoencoder.overrides.decoder_depth=1",
    "autoencoder.overrides.num_heads=2",
]


def torchrun(stage: str, out, *args: str, config: str = "tiny", sets=(), command="train") -> str:
    """``torchrun --nproc_per_node 2 -m cmdvideo.cli train STAGE ...``; returns stdout."""
    verb = [command, stage] if stage else [command]
    argv = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "cmdvideo.cli",
        *verb,
        "--config",
        config,
        "--out",
        str(out),
        *args,
    ]
    for item in [*SMALL, *sets]:
        argv += ["--set", item]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    # a session of its own, killed whole on timeout: a hung rank never outlives the test
    proc = run_isolated(argv, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def check_two_process_run(out, stdout: str, model_folder: str) -> None:
    log = records(out)
    start = next(r for r in log if r.get("event") == "start")
    assert start["num_processes"] == 2 and start["distributed_type"] == "MULTI_CPU"
    first, second = start["rng_check"]
    assert first != second  # each rank draws its own noise, timesteps and dropout
    end = [r for r in log if r.get("event") == "end"][-1]
    assert len(end["param_fingerprints"]) == 2
    assert end["param_fingerprints"][0] == end["param_fingerprints"][1]  # gradients synced
    assert (out / model_folder / "config.json").is_file()
    assert stdout.count("model:") == 1  # one report, from the main process


@pytest.fixture(scope="module")
def autoencoder_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mp") / "ae"
    stdout = torchrun("autoencoder", out, "--max-steps", "4")
    return out, stdout


def test_autoencoder_trains_in_two_processes(autoencoder_run):
    out, stdout = autoencoder_run
    check_two_process_run(out, stdout, "autoencoder")
    assert "motion_scaling_factor" in stdout  # calibrated once, on the main process
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint-000002", "checkpoint-000004"]
    for name in checkpoints:  # both ranks' RNG states made it in before the rename
        files = {p.name for p in (out / "checkpoints" / name).iterdir()}
        assert {"random_states_0.pkl", "random_states_1.pkl"} <= files


def test_two_process_resume_matches_an_uninterrupted_run(autoencoder_run, tmp_path):
    full, _ = autoencoder_run
    half = tmp_path / "half"
    torchrun("autoencoder", half, "--max-steps", "2")
    torchrun("autoencoder", half, "--max-steps", "4", "--resume")
    name = "autoencoder/diffusion_pytorch_model.safetensors"
    a, b = load_file(full / name), load_file(half / name)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "stage, condition",
    [("content", "class+text"), ("motion", "text")],  # learned word encoders in both
)
def test_diffusion_stages_train_in_two_processes(stage, condition, autoencoder_run, tmp_path):
    ae, _ = autoencoder_run
    out = tmp_path / stage
    stdout = torchrun(
        stage,
        out,
        "--max-steps",
        "4",
        "--autoencoder",
        str(ae),
        sets=[f"{stage}.condition={condition}"],
    )
    check_two_process_run(out, stdout, stage)
    assert (out / "text_encoder" / "config.json").is_file()


def test_classifier_trains_in_two_processes(tmp_path):
    out = tmp_path / "classifier"
    stdout = torchrun(
        "classifier",
        out,
        "--max-steps",
        "4",
        config="moving-shapes-classifier",
        sets=["classifier.widths=[8,8,8,8]", "classifier.feature_dim=16"],
    )
    check_two_process_run(out, stdout, "classifier")


def test_two_processes_write_one_latent_cache(autoencoder_run, tmp_path):
    """Each process encodes its own part and writes its own shards; the joined cache equals a
    one-process cache item by item (read memory-mapped)."""
    from cmdvideo.cli import main
    from cmdvideo.data.latent_cache import LatentCache

    ae, _ = autoencoder_run
    args = ["--autoencoder", str(ae), "--num-videos", "7", "--batch-size", "2"]
    stdout = torchrun(None, tmp_path / "two", *args, command="cache")
    assert stdout.count("cached 7 videos") == 1 and "2 processes" in stdout
    argv = ["cache", "--config", "tiny", "--out", str(tmp_path / "one"), *args]
    for item in SMALL:
        argv += ["--set", item]
    assert main(argv) == 0
    two, one = LatentCache(tmp_path / "two"), LatentCache(tmp_path / "one")
    assert len(two) == len(one) == 7 and len(two.files) == 2  # one shard per process
    assert two.captions() == one.captions()
    for i in range(7):
        a, b = two[i], one[i]
        assert a["label"] == b["label"]
        torch.testing.assert_close(a["content"], b["content"], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(a["motion"], b["motion"], atol=1e-5, rtol=1e-5)

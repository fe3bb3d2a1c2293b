"""`make bundle` (scripts/train_bundle.sh with configs/bundle/) in miniature: every step of the
real recipe at a size that trains in seconds, interrupted in the middle of a stage and run
again, as a user would after Ctrl-C."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import default_sigint

ROOT = Path(__file__).resolve().parents[2]
MINIATURE = [
    "data.num_frames=4",
    "data.height=16",
    "data.width=16",
    "data.num_videos=8",
    "vae.frames_per_video=2",
    "train.batch_size=2",
    "train.preview_every=0",
    "train.max_steps=30",
    "train.checkpoint_every=5",
    "train.snapshot_every=0",
    "autoencoder.overrides.hidden_size=32",
    "autoencoder.overrides.encoder_depth=1",
    "autoencoder.overrides.decoder_depth=1",
    "autoencoder.overrides.num_heads=2",
    "autoencoder.overrides.refine_channels=4",
    "content.overrides.block_out_channels=[16,32,32]",
    "content.overrides.attention_head_dim=8",
    "motion.overrides.hidden_size=32",
    "motion.overrides.depth=1",
    "motion.overrides.num_heads=2",
]


def _running(root: Path) -> list[str]:
    """Processes still training a step of the recipe in ``root``."""
    found = subprocess.run(["pgrep", "-f", "--", f"--out {root}/"], capture_output=True, text=True)
    return found.stdout.split()


def _recipe(root: Path, dest: Path, extra: list[str], timeout: float, stop_when=None) -> int:
    """Run the recipe in its own process group; kill the whole group at ``stop_when()`` (a
    simulated Ctrl-C) or on timeout. Returns the exit code (None-safe: -9 when killed)."""
    env = dict(
        os.environ,
        BUNDLE_SET=" ".join(MINIATURE + extra),
        BUNDLE_DEST=str(dest),
        BUNDLE_EVAL="--per-class 1 --steps 2 --device cpu",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    proc = subprocess.Popen(
        ["bash", "scripts/train_bundle.sh", str(root)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if (stop_when is not None and stop_when()) or time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGINT if stop_when else signal.SIGKILL)
                proc.wait(timeout=30)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = proc.stdout.read().decode()
    if time.monotonic() > deadline:
        pytest.fail(f"the recipe ran past {timeout} s:\n{output[-3000:]}")
    print(output[-3000:])
    return proc.returncode


@pytest.mark.slow
def test_the_bundle_recipe_runs_resumes_after_an_interruption_and_ships(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    from cmdvideo.config import load_config
    from cmdvideo.pipelines.cmd import CMDPipeline

    for stage in ("vae", "autoencoder", "content", "motion"):  # every stage is a config file
        assert load_config(ROOT / "configs" / "bundle" / f"{stage}.yaml").data.world == "upright"
    root, dest = tmp_path / "bundle", tmp_path / "shipped"
    # the autoencoder stage is stopped once it has a checkpoint, as by Ctrl-C (any: the trainer
    # keeps only the last ones, so the first exists for a moment only)
    checkpoints = root / "ae" / "checkpoints"
    code = _recipe(root, dest, [], 300, stop_when=lambda: any(checkpoints.glob("checkpoint-*")))
    assert code != 0 and not (root / "ae" / "done").exists() and (root / "vae" / "done").is_file()
    vae_done = (root / "vae" / "done").stat().st_mtime_ns
    # then in step 5, where content and motion train as background jobs: Ctrl-C stops both
    both = [root / stage / "checkpoints" for stage in ("content", "motion")]
    code = _recipe(
        root, dest, [], 300, stop_when=lambda: all(any(c.glob("checkpoint-*")) for c in both)
    )
    deadline = time.monotonic() + 30
    while _running(root) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert code != 0 and not _running(root) and not (root / "content" / "done").exists()
    assert _recipe(root, dest, [], 300) == 0
    assert (root / "vae" / "done").stat().st_mtime_ns == vae_done  # finished steps are skipped
    assert "resumed from" in (root / "ae.log").read_text()  # the stopped one continues
    wall = (root / "wall_times.txt").read_text()
    for step in ("vae", "frames", "ae", "cache", "content", "motion", "pipeline"):
        assert f"{root}/{step}:" in wall
    pipe = CMDPipeline.from_pretrained(dest)
    assert pipe.config.training_data == {"source": "moving-shapes", "world": "upright"}
    assert pipe.video_size() == (16, 16) and pipe.config.num_frames == 4
    assert (root / "eval" / "eval.json").is_file()

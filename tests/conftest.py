"""Shared test helpers: synthetic video files written with PyAV directly (independent of
cmdvideo's own writer), the folder of good and bad files the acceptance tests use, and running
a command in a process group of its own that a timeout kills whole."""

import json
import os
import signal
import subprocess

import av
import numpy as np
import psutil
import pytest
import torch


def smooth_frames(num_frames, size=(48, 64)):
    """uint8 (T, H, W, 3): smooth colour waves drifting over time (codec-friendly content)."""
    t, y, x = np.meshgrid(
        np.arange(num_frames), np.arange(size[0]), np.arange(size[1]), indexing="ij"
    )
    r = 128 + 100 * np.sin((x + 3 * t) / 8.0)
    g = 128 + 100 * np.cos((y - 2 * t) / 7.0)
    b = 128 + 60 * np.sin((x + y) / 10.0)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def write_test_video(path, num_frames, size=(48, 64), fps=8, faststart=False):
    """Write a synthetic H.264 mp4; ``faststart`` puts the index first (so a cut file opens)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width, stream.pix_fmt = size[0], size[1], "yuv420p"
        for frame in smooth_frames(num_frames, size):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture
def make_video():
    return write_test_video


@pytest.fixture
def bad_video_folder(tmp_path):
    """good.mp4 (24 frames), cut.mp4 (truncated), notes.mp4 (text), short.mp4 (3 frames),
    packed.mp4.gz (a good video, gzipped)."""
    import gzip

    folder = tmp_path / "videos"
    good = write_test_video(folder / "good.mp4", 24)
    (folder / "packed.mp4.gz").write_bytes(gzip.compress(good.read_bytes()))
    cut = write_test_video(folder / "cut.mp4", 24, faststart=True)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    (folder / "notes.mp4").write_text("meeting notes, not a video")
    write_test_video(folder / "short.mp4", 3)
    return folder


# A one-block autoencoder for tests that train through it (--set overrides of the tiny config).
SMALL_AUTOENCODER = [
    "autoencoder.overrides.hidden_size=32",
    "autoencoder.overrides.encoder_depth=1",
    "autoencoder.overrides.decoder_depth=1",
    "autoencoder.overrides.num_heads=2",
    "autoencoder.overrides.motion_channels=4",
    "autoencoder.overrides.motion_scaling_factor=2.0",  # as if calibrated
]


def fit_fixed_batch(stage, batch, steps, lr):
    """Train ``stage.model()`` on one batch with AdamW; returns the losses. The RNG is reseeded
    to one of two values each step, so diffusion stages see two fixed noise draws: a target the
    model can actually fit."""
    import torch

    model = stage.model()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        torch.manual_seed(step % 2)
        loss, _ = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def make_tiny_vae():
    """A randomly initialised 2-level AutoencoderKL (f=2, 4 latent channels)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=32,
        scaling_factor=0.5,
    )


@pytest.fixture
def tiny_vae_dir(tmp_path):
    torch.manual_seed(0)
    make_tiny_vae().save_pretrained(tmp_path / "tiny-vae")
    return tmp_path / "tiny-vae"


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory):
    """A Stable-Diffusion-style folder (vae/, unet/, text_encoder/, tokenizer/) of tiny random
    models: what a user's local SD checkout looks like to our loaders."""
    import string

    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("tiny-sd")
    torch.manual_seed(0)
    make_tiny_vae().save_pretrained(root / "vae")
    UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(16, 32),
        norm_num_groups=8,
        cross_attention_dim=32,
        attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    ).save_pretrained(root / "unet")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in string.ascii_lowercase:
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(
        str(root / "vocab.json"), str(root / "merges.txt"), model_max_length=16
    )
    tokenizer.save_pretrained(root / "tokenizer")
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=16,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    CLIPTextModel(config).save_pretrained(root / "text_encoder")
    # Stable Diffusion 2.1-v's schedule (not DDPM's defaults), under SD 1.5's scheduler class;
    # "trailing" spacing so that every value differs from cmdvideo's defaults.
    (root / "scheduler").mkdir()
    (root / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD_SCHEDULER))
    return root


SD_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "v_prediction",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "trailing",
}


@pytest.fixture(scope="session")
def tiny_sentence_encoder_dir(tmp_path_factory):
    """A BERT-family sentence encoder in sentence-transformers' folder layout (config, weights
    and tokenizer at the top), tiny and random: what all-MiniLM-L6-v2 looks like to the loader."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny-minilm")
    words = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "a",
        "red",
        "blue",
        "green",
        "circle",
        "square",
        "triangle",
        "moving",
        "left",
        "right",
        "on",
        "background",
        "crimson",
        "ball",
        "sliding",
        "to",
        "the",
        "navy",
    ]
    (root / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab_file=str(root / "vocab.txt")).save_pretrained(root)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(root)
    return root


def pytest_configure(config):
    """SIGTERM (an outer timeout, CI cancelling) ends the session like Ctrl-C, so that every
    ``finally`` still runs: run_isolated's children in their own sessions would survive it."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def default_sigint() -> None:
    """``preexec_fn`` for a child that a test interrupts as Ctrl-C does: SIGINT as in a terminal,
    even when the tests themselves run where it is ignored (a background job of a script,
    whose children inherit the ignoring)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_isolated(argv, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(argv, capture_output=True, text=True)`` in a new session: past
    ``timeout`` seconds (or on any interruption) the process group and every descendant are
    killed (torchrun starts each worker in a session of its own), and the test fails with the
    output so far; nothing is left running."""
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        stdout, stderr = proc.communicate()
        pytest.fail(
            f"{' '.join(map(str, argv[:8]))} ... ran past {timeout} s; killed its "
            f"process group\nstdout: {stdout[-2000:]}\nstderr: {stderr[-3000:]}"
        )
    finally:
        if proc.poll() is None:  # interrupted (Ctrl-C, another error): leave nothing behind
            kill_tree(proc)
            proc.communicate()
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``'s process group and every process it started, wherever they run."""
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for child in descendants:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(descendants, timeout=10)


# `pytest -m "not slow"`: the fast loop. What takes seconds per test (processes, servers,
# browsers, real I3D, whole recipes), by module or by test; `make test` runs everything.
SLOW_MODULES = {
    "test_multiprocess",
    "test_readme",
    "test_app",
    "test_processes",
    "test_interrupt",
    "test_presets",
    "test_bundle_recipe",
    "test_extras",
    "test_i3d",
    "test_own_videos",
}
SLOW_TESTS = {
    "test_refiner_starts_as_the_identity_and_learns",
    "test_sigkill_then_resume_matches_uninterrupted_run",
    "test_isolated_job_measures_peak_memory",
    "test_bench_tiny_writes_markdown_json_and_chart",
    "test_cost_terms_are_what_the_pipeline_runs_per_step",
    "test_full_video_baseline_is_a_trainer_stage",
    "test_gpu_check_dry_run_takes_the_users_path",
    "test_same_seed_same_video_across_processes",
    "test_importing_training_loads_no_evaluation_and_has_no_side_effects",
    "test_loaders_after_a_read_in_the_main_process_never_hang",
    "test_a_hanging_test_fails_within_its_limit_with_the_stacks",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__ in SLOW_MODULES or item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)

"""The first hour of a new user: every bad input ends in one line that names the flag, the value
and what to do, before any model work; no traceback without --debug; nothing tries the network."""

import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest
import torch
from conftest import write_test_video

from cmdvideo.cli import build_parser, main
from cmdvideo.cli.common import apply_threads
from cmdvideo.config import load_config
from cmdvideo.pipelines.cmd import BUNDLED_PIPELINES
from cmdvideo.runtime import default_threads

SAMPLE = ["sample", "--model", "moving-shapes-tiny", "--steps", "2", "--quiet"]


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "no error message"
    assert "Traceback" not in "\n".join(err)
    return err[-1]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to resolve a host name fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def no_sampling(monkeypatch):
    """Sampling fails the test: errors must come before any denoising step."""
    import cmdvideo.pipelines.sampling as sampling

    def refuse(*args, **kwargs):
        raise AssertionError("sampling started before the input was checked")

    monkeypatch.setattr(sampling, "sample_content", refuse)


@pytest.fixture
def no_loading(monkeypatch):
    """Loading a pipeline fails the test: refusals must come before any weights are read."""
    from cmdvideo.pipelines.cmd import CMDPipeline

    def refuse(*args, **kwargs):
        raise AssertionError("the pipeline was loaded before the input was checked")

    monkeypatch.setattr(CMDPipeline, "from_pretrained", refuse)


@pytest.mark.parametrize("model", ["/nonexistent", "runs/nothing", "./nothing", "nothing"])
def test_missing_pipeline_folder_is_one_line_and_offline(
    model, tmp_path, monkeypatch, capsys, no_network
):
    monkeypatch.chdir(tmp_path)
    assert main(SAMPLE[:1] + ["--model", model, "--prompt", "a red circle"]) == 2
    line = error_line(capsys)
    assert f"no pipeline folder {model!r}" in line and "moving-shapes-tiny" in line


def test_empty_folder_says_it_is_not_a_pipeline(tmp_path, capsys):
    assert main(["sample", "--model", str(tmp_path), "--prompt", "a red circle"]) == 2
    assert "is not a pipeline folder (it has no model_index.json)" in error_line(capsys)


def test_truncated_weights_are_one_line(tmp_path, capsys):
    copy = shutil.copytree(BUNDLED_PIPELINES["moving-shapes-tiny"], tmp_path / "pipe")
    weights = copy / "content_model" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:10_000])
    assert main(["sample", "--model", str(copy), "--prompt", "a red circle"]) == 2
    line = error_line(capsys)
    assert line.startswith("error: could not load the pipeline") and "truncated" in line


def test_out_naming_a_file_is_refused_first(tmp_path, capsys, no_sampling):
    target = tmp_path / "taken.txt"
    target.write_text("x")
    assert main(SAMPLE + ["--prompt", "a red circle", "--out", str(target)]) == 2
    assert f"--out {target} is a file" in error_line(capsys)


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--prompt", "a red circle", "--guidance", "-3"],
            "--guidance must be a number in [0, 30], got -3.0",
        ),
        (
            ["--prompt", "a red circle", "--guidance", "100"],
            "--guidance must be a number in [0, 30], got 100.0",
        ),
        (["--prompt", ""], "--prompt is empty"),
        (["--prompt", "   "], "--prompt is empty"),
        (["--prompt", "x" * 301], "--prompt has 301 characters, at most 300"),
        (
            ["--prompt", "a red circle", "--guidance-rescale", "5"],
            "--guidance-rescale must be a number in [0, 1], got 5.0",
        ),
        (
            ["--prompt", "a red circle", "--steps", "0"],
            "--steps must be an integer in [1, 1000], got 0",
        ),
        (
            ["--prompt", "a red circle", "--steps", "1001"],
            "--steps must be an integer in [1, 1000], got 1001",
        ),
        (
            ["--prompt", "a red circle", "--num-videos", "0"],
            "--num-videos must be an integer in [1, 2048], got 0",
        ),
        (
            ["--prompt", "a red circle", "--num-frames", "1000000"],
            "--num-frames must be an integer in [1, 1024], got 1000000",
        ),
        (
            ["--prompt", "a red circle", "--num-frames", "0"],
            "--num-frames must be an integer in [1, 1024], got 0",
        ),
        (
            ["--prompt", "a red circle", "--overlap", "4"],
            "--overlap joins the clips of a long video; give --num-frames above",
        ),
        (
            ["--prompt", "a red circle", "--num-frames", "64", "--overlap", "16"],
            "--overlap must be an integer in [1, 15], got 16",
        ),
        (
            ["--prompt", "a red circle", "--seed", "-1"],
            "--seed must be an integer in [0, 2147483647], got -1",
        ),
        (
            ["--prompt", "a red circle", "--upscale", "0"],
            "--upscale must be an integer in [1, 16], got 0",
        ),
        (
            ["--prompt", "a red circle", "--upscale", "100000"],
            "--upscale must be an integer in [1, 16], got 100000",
        ),
        (["--class", "sideways"], "--class: unknown class 'sideways'"),
        (["--class", "12"], "--class: class 12 out of range [0, 10)"),
        (["--class", "-1"], "--class: class -1 out of range [0, 10)"),
        (
            [
                "--prompt",
                "a",
                "--prompt",
                "b",
                "--class",
                "left",
                "--class",
                "up",
                "--class",
                "down",
            ],
            "give one --class or one per prompt",
        ),
        (["--prompt", "a red circle", "--unconditional"], "--unconditional takes no --prompt"),
        (["--image", "missing.png"], "--image missing.png: no such file"),
    ],
)
def test_bad_sampling_values_name_the_flag_before_loading(
    flags, message, tmp_path, capsys, no_loading
):
    argv = SAMPLE + ["--out", str(tmp_path / "out")] + flags  # a repeated flag: the last wins
    assert main(argv) == 2
    assert message in error_line(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["edit", "--video", "VIDEO", "--prompt", "a blue circle", "--strength", "2"],
            "--strength must be a number in [0, 1], got 2.0",
        ),
        (
            ["edit", "--video", "SHORT", "--prompt", "a blue circle"],
            "3 frames, fewer than the 16 needed",
        ),
        (["edit", "--video", "TEXT", "--prompt", "a blue circle"], "--video"),
        (["edit", "--video", "VIDEO", "--prompt", "x" * 400], "--prompt has 400 characters"),
        (
            ["edit", "--video", "VIDEO", "--prompt", "a blue circle", "--seed", "-2"],
            "--seed must be",
        ),
        (["transfer", "--content", "VIDEO", "--motion", "SHORT"], "--motion"),
        (
            ["transfer", "--content", "CLEAR", "--motion", "VIDEO"],
            "--content: CLEAR is fully transparent",
        ),
        (
            ["transfer", "--content", "VIDEO", "--motion", "VIDEO", "--num-frames", "2000"],
            "--num-frames must be an integer in [1, 1024]",
        ),
        (
            ["transfer", "--content", "VIDEO", "--motion", "VIDEO", "--num-frames", "20"],
            "16 frames, fewer than the 20 needed",
        ),
        (["demo", "--prompt", "x" * 301], "--prompt has 301 characters"),
        (["demo", "--steps", "0"], "--steps must be"),
        (
            ["sample", "--image", "CLEAR", "--prompt", "moving up"],
            "--image: CLEAR is fully transparent",
        ),
        (["sample", "--image", "TEXT", "--prompt", "moving up"], "not an image file"),
    ],
)
def test_every_generating_verb_checks_before_loading(argv, message, tmp_path, capsys, no_loading):
    from PIL import Image

    files = {
        "VIDEO": write_test_video(tmp_path / "v.mp4", 16),
        "SHORT": write_test_video(tmp_path / "s.mp4", 3),
        "TEXT": tmp_path / "t.mp4",
        "CLEAR": tmp_path / "clear.png",
    }
    files["TEXT"].write_text("not a video")
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(files["CLEAR"])
    argv = [str(files.get(a, a)) for a in argv] + ["--out", str(tmp_path / "out")]
    assert main(argv) == 2
    line = error_line(capsys)
    for name, path in files.items():
        line = line.replace(str(path), name)
    assert message in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "--prompt", "a red circle", "--steps", "0"], "--steps must be an integer"),
        (["train", "autoencoder", "--config", "broken.yaml", "--out", "run"], "not valid YAML"),
        (
            [
                "train",
                "motion",
                "--config",
                "tiny",
                "--set",
                "train.bach_size=2",
                "--out",
                "run",
                "--autoencoder",
                "ae",
            ],
            "unknown key(s) ['bach_size']",
        ),
        (
            [
                "train",
                "content",
                "--set",
                "content.condition=clas",
                "--out",
                "run",
                "--autoencoder",
                "ae",
            ],
            "content.condition must be one of 'class', 'text'",
        ),
        (
            [
                "train",
                "motion",
                "--set",
                "motion.backbone=dit",
                "--out",
                "run",
                "--autoencoder",
                "ae",
            ],
            "motion.backbone is a content-stage setting",
        ),
        (
            ["train", "autoencoder", "--set", "train.mixed_precision=fp8", "--out", "run"],
            "train.mixed_precision must be one of 'no', 'fp16', 'bf16'; got 'fp8'",
        ),
    ],
)
def test_a_refusal_comes_before_torch_is_imported(tmp_path, argv, message):
    """Generation checked against the pipeline folder's JSON files, training against its
    config: neither torch nor any weights load (a refusal took 7-13 s when they loaded first)."""
    (tmp_path / "broken.yaml").write_text("data:\n  height: [32\n")
    code = (
        "import sys; from cmdvideo.cli import main; "
        f"rc = main({argv!r}); "
        "print(rc, 'torch' in sys.modules)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # a hang: end its whole process group
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert stdout.split() == ["2", "False"], stderr
    assert message in stderr


def test_every_generation_flag_has_one_bound_in_the_table():
    """Each option of the generating verbs is an argument of the one table (ARGUMENTS), under
    its flag, or one of the few that are not about what is generated."""
    from cmdvideo.cli.common import flag_of
    from cmdvideo.pipelines.arguments import ARGUMENTS

    bounded = {flag_of(arg) for arg in ARGUMENTS}
    other = {
        "-h",
        "--help",
        "--model",
        "--lora",
        "--out",
        "--device",
        "--threads",
        "--quiet",
        "--unconditional",
        "--compile",
        "--scheduler",  # --sampler's old name
    }
    commands = dict(_subparsers(build_parser()))
    for verb in ("sample", "demo", "edit", "transfer"):
        flags = set(commands[verb]._option_string_actions)
        assert flags - other <= bounded, (verb, flags - other - bounded)


def test_the_bundled_model_is_every_generating_verbs_default():
    commands = dict(_subparsers(build_parser()))
    for verb in ("sample", "demo", "edit", "transfer", "serve"):
        assert commands[verb].get_default("model") == "moving-shapes-tiny", verb


def test_a_broken_config_file_is_one_line(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("train:\n  batch_size: [8\n")
    assert main(["train", "autoencoder", "--config", str(broken), "--out", str(tmp_path)]) == 2
    line = error_line(capsys)
    assert f"config {broken}: not valid YAML (line 3, column 1)" in line
    (tmp_path / "list.yaml").write_text("- data\n- train\n")
    with pytest.raises(ValueError, match="expected a mapping of sections"):
        load_config(tmp_path / "list.yaml")
    with pytest.raises(ValueError, match="not valid YAML; quote it"):
        load_config("tiny", ["data.source=[x"])


def test_serve_on_a_busy_port_says_so_before_anything_loads(capsys, no_loading):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    out = capsys.readouterr()
    assert f"--port {port}: 127.0.0.1:{port} is already in use" in out.err
    assert "serve" not in out.out  # never claimed to be running
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be an integer in [1, 65535]" in error_line(capsys)
    assert main(["serve", "--max-frames", "5000"]) == 2
    assert "--max-frames lowers the bound every front end shares" in error_line(capsys)


def test_demo_checks_every_prompt_first(tmp_path, capsys, no_loading):
    assert main(["demo", "--out", str(tmp_path), "--prompt", " "]) == 2
    assert "--prompt is empty" in error_line(capsys)


def test_unknown_words_are_warned_once(tmp_path, caplog):
    with caplog.at_level("WARNING"):
        argv = SAMPLE + ["--prompt", "a red zebra moving left", "--out", str(tmp_path)]
        assert main(argv) == 0
    warnings = [r.getMessage() for r in caplog.records if "zebra" in r.getMessage()]
    assert len(warnings) == 1 and "vocabulary" in warnings[0]


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError, match="no pipeline folder"):
        main(["--debug", "sample", "--model", str(tmp_path / "gone"), "--prompt", "x"])


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    from cmdvideo import __version__

    assert capsys.readouterr().out.strip() == f"cmdvideo {__version__}"


def test_bench_writes_outside_the_committed_results_by_default():
    assert build_parser().parse_args(["bench"]).out == "outputs/bench"


def _subparsers(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from ((f"{name} {n}".strip(), p) for n, p in _subparsers(child))
                if not any(isinstance(a, argparse._SubParsersAction) for a in child._actions):
                    yield name, child


def test_every_computing_command_takes_threads():
    commands = dict(_subparsers(build_parser()))
    assert {
        "sample",
        "demo",
        "bench",
        "cache",
        "calibrate",
        "train autoencoder",
        "train content",
        "eval generation",
        "eval fvd",
    } <= set(commands)
    without = [
        name
        for name, p in commands.items()
        if name not in ("pipeline assemble", "index")  # no torch (index: --workers)
        and "--threads" not in p._option_string_actions
    ]
    assert without == []


def test_thread_rule(monkeypatch):
    import cmdvideo.runtime as common

    monkeypatch.setattr(common.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(common, "busy_cores", lambda: 0.2)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_threads() == 4
    monkeypatch.setattr(common, "busy_cores", lambda: 1.7)  # another process on two cores
    assert default_threads() == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # two training processes share what is free
    assert default_threads() == 1
    monkeypatch.setattr(common, "busy_cores", lambda: 4.0)
    assert default_threads() == 1  # never 0
    before = torch.get_num_threads()
    try:
        args = build_parser().parse_args(["sample", "--model", "m", "--threads", "3"])
        assert apply_threads(args) == 3 and torch.get_num_threads() == 3
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's own setting wins over the rule
        args = build_parser().parse_args(["sample", "--model", "m"])
        assert apply_threads(args) == 1 and torch.get_num_threads() == 1
        args = build_parser().parse_args(["sample", "--model", "m", "--threads", "0"])
        with pytest.raises(ValueError, match="--threads must be >= 1"):
            apply_threads(args)
    finally:
        torch.set_num_threads(before)


def test_skipped_files_are_reported_once_not_every_epoch(tmp_path, capsys):
    folder = tmp_path / "videos"
    for name in ("a.mp4", "b.mp4", "c.mp4"):  # one held out (data.heldout_files)
        write_test_video(folder / name, 24, size=(16, 16))
    (folder / "notes.mp4").write_text("not a video")
    argv = [
        "train",
        "autoencoder",
        "--config",
        "tiny",
        "--data",
        str(folder),
        "--out",
        str(tmp_path / "run"),
        "--max-steps",
        "4",
    ]
    for item in [
        "data.num_frames=4",
        "data.height=16",
        "data.width=16",
        "train.batch_size=2",
        "train.preview_every=0",
        "autoencoder.overrides.hidden_size=32",
        "autoencoder.overrides.encoder_depth=1",
        "autoencoder.overrides.decoder_depth=1",
        "autoencoder.overrides.num_heads=2",
    ]:
        argv += ["--set", item]
    assert main(argv) == 0  # 4 epochs of one batch each
    out = capsys.readouterr()
    assert out.err.count("skipped files by reason") == 1
    # calibration says how many videos it really read (2 here, not the default 256)
    assert "over 2 videos" in out.out

"""The first hour of a new user: every bad input ends in one line that names the flag, the value
and what to do, before any model work; no traceback without --debug; nothing tries the network."""

import shutil
import socket

import pytest
import torch
from conftest import write_test_video

from cmdvideo.cli import build_parser, main
from cmdvideo.cli.common import apply_threads
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
    import cmdvideo.pipelines.cmd as cmd

    def refuse(*args, **kwargs):
        raise AssertionError("sampling started before the input was checked")

    monkeypatch.setattr(cmd, "sample_content", refuse)


@pytest.mark.parametrize("model", ["/nonexistent", "runs/nothing", "./nothing", "nothing"])
def test_missing_pipeline_folder_is_one_line_and_offline(model, tmp_path, monkeypatch, capsys,
                                                         no_network):  # fmt: skip
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
        (["--prompt", "a red circle", "--guidance", "-3"], "--guidance must be a number >= 0, got -3.0"),
        (["--prompt", ""], "--prompt is empty"),
        (["--prompt", "   "], "--prompt is empty"),
        (["--prompt", "a red circle", "--guidance-rescale", "5"], "--guidance-rescale must be a number in [0, 1], got 5.0"),
        (["--prompt", "a red circle", "--steps", "0"], "--steps must be an integer in [1, 1000], got 0"),
        (["--prompt", "a red circle", "--num-videos", "0"], "--num-videos must be an integer >= 1, got 0"),
        (["--class", "sideways"], "--class: unknown class 'sideways'"),
        (["--class", "12"], "--class: class 12 out of range [0, 10)"),
        (["--prompt", "a", "--prompt", "b", "--class", "left", "--class", "up", "--class", "down"], "give one --class or one per prompt"),
        (["--prompt", "a red circle", "--upscale", "0"], "--upscale must be an integer >= 1"),
        (["--prompt", "a red circle", "--unconditional"], "--unconditional takes no --prompt"),
    ],
)  # fmt: skip
def test_bad_sampling_values_name_the_flag_before_sampling(flags, message, tmp_path, capsys,
                                                           no_sampling):  # fmt: skip
    argv = SAMPLE + ["--out", str(tmp_path / "out")] + flags  # a repeated flag: the last wins
    assert main(argv) == 2
    assert message in error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_demo_checks_every_prompt_first(tmp_path, capsys, no_sampling):
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
    assert {"sample", "demo", "bench", "cache", "calibrate", "train autoencoder",
            "train content", "eval generation", "eval fvd"} <= set(commands)  # fmt: skip
    without = [name for name, p in commands.items()
               if name not in ("pipeline assemble", "index")  # no torch (index: --workers)
               and "--threads" not in p._option_string_actions]  # fmt: skip
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
    argv = ["train", "autoencoder", "--config", "tiny", "--data", str(folder), "--out",
            str(tmp_path / "run"), "--max-steps", "4"]  # fmt: skip
    for item in ["data.num_frames=4", "data.height=16", "data.width=16", "train.batch_size=2",
                 "train.preview_every=0", "autoencoder.overrides.hidden_size=32",
                 "autoencoder.overrides.encoder_depth=1", "autoencoder.overrides.decoder_depth=1",
                 "autoencoder.overrides.num_heads=2"]:  # fmt: skip
        argv += ["--set", item]
    assert main(argv) == 0  # 4 epochs of one batch each
    out = capsys.readouterr()
    assert out.err.count("skipped files by reason") == 1
    # calibration says how many videos it really read (2 here, not the default 256)
    assert "over 2 videos" in out.out

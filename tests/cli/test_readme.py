"""README.md's generation examples run as written, on the files `make demo` writes: the Python
snippets under "## Python" and every command under "## Generating from the command line"."""

import ast
import os
import re
import shlex
from pathlib import Path

import pytest
import torch

from cmdvideo.cli import main
from cmdvideo.data.video_io import read_video
from cmdvideo.evaluation.motion_check import color_check
from cmdvideo.pipelines.sample_folder import read_sample_folder

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(title: str) -> str:
    return README.read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _blocks(title: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _section(title), re.S)


def _commands(block: str) -> list[list[str]]:
    lines = block.replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.strip()]


def _visible(path) -> dict:
    """Background and shape colour of a written video (the project's hand-written checks)."""
    video = torch.from_numpy(read_video(path)).permute(3, 0, 1, 2).float() / 127.5 - 1
    return color_check(video)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    """A folder where `cmdvideo demo` (what `make demo` runs) has written outputs/demo."""
    folder = tmp_path_factory.mktemp("readme")
    here = os.getcwd()
    os.chdir(folder)
    try:
        assert main(["demo"]) == 0
    finally:
        os.chdir(here)
    return folder


def test_the_python_examples_run_as_written(demo_folder, monkeypatch):
    monkeypatch.chdir(demo_folder)
    snippet, split = _blocks("Python", "python")[:2]
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 - the README's own code
    assert read_video("purple_square.gif").shape == (16, 128, 128, 3)
    results = []
    for node in ast.parse(split).body:  # keep what each expression line returns
        if isinstance(node, ast.Expr):
            results.append(eval(compile(ast.Expression(node.value), "README", "eval"), namespace))
        else:
            exec(compile(ast.Module([node], []), "README", "exec"), namespace)  # noqa: S102
    i2v, transfer, edit, long = (r.frames for r in results)
    assert i2v.shape == transfer.shape == edit.shape == (1, 16, 32, 32, 3)
    assert long.shape == (1, 64, 32, 32, 3)
    colours = color_check(torch.from_numpy(edit[0]).permute(3, 0, 1, 2) * 2 - 1)
    assert colours["background"] != colours["foreground"]  # the edited shape can be seen


def test_the_command_line_examples_run_as_written(demo_folder, monkeypatch):
    monkeypatch.chdir(demo_folder)
    commands = _commands(_blocks("Generating from the command line", "bash")[0])
    assert len(commands) == 6 and all(c[0] == "cmdvideo" for c in commands)
    for argv in commands:
        assert main(argv[1:]) == 0, shlex.join(argv)
    outputs = demo_folder / "outputs"
    assert len(read_sample_folder(outputs / "samples")) == 4
    assert len(read_sample_folder(outputs / "bounce")) == 1
    triangle = sorted(p.name for p in (outputs / "triangle").glob("video-*"))
    assert triangle == ["video-000.gif", "video-000.mp4"]  # demo --prompt: that video only
    i2v = read_sample_folder(outputs / "i2v")
    assert len(i2v) == 2 and all(read_video(p).shape[0] == 64 for p, _ in i2v)
    assert read_video(outputs / "transfer" / "video-000.mp4").shape[0] == 16
    before = _visible(outputs / "demo" / "video-000.mp4")
    after = _visible(outputs / "edit" / "video-000.mp4")
    assert after["background"] != after["foreground"]  # the edited shape can be seen
    assert after != before  # and it changed

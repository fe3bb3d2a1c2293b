"""Nothing made is lost: every generating command writes each video as soon as it is made, in one
step (a temporary file, then renamed), so Ctrl-C keeps every finished video, listed, and never
leaves a half-written file."""

import os
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest
from conftest import default_sigint

from cmdvideo.cli import EXIT_INTERRUPTED, main
from cmdvideo.data.video_io import read_video, write_video
from cmdvideo.pipelines.cmd import CMDPipeline
from cmdvideo.pipelines.sample_folder import read_sample_folder

PROMPT = "a red circle moving left on a blue background"


def _interrupt_on_call(monkeypatch, n: int) -> None:
    """The pipeline's n-th call (counting from 1) raises KeyboardInterrupt, as Ctrl-C would."""
    original, calls = CMDPipeline.__call__, []

    def call(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CMDPipeline, "__call__", call)


def _leftovers(folder) -> list[str]:
    return [p.name for p in folder.iterdir() if ".part" in p.name]


def _check_kept(folder, count: int) -> None:
    """``count`` whole videos (mp4 and gif, 16 frames each), listed in prompts.txt, and no
    temporary file."""
    listed = read_sample_folder(folder)
    assert [p.name for p, _ in listed] == [f"video-{i:03d}.mp4" for i in range(count)]
    for i in range(count):
        for suffix in (".mp4", ".gif"):
            assert read_video(folder / f"video-{i:03d}{suffix}").shape[0] == 16
    assert not (folder / f"video-{count:03d}.mp4").exists()
    assert _leftovers(folder) == []


def test_sample_interrupted_keeps_every_finished_video(tmp_path, monkeypatch, capsys):
    _interrupt_on_call(monkeypatch, 4)
    out = tmp_path / "samples"
    argv = [
        "sample",
        "--prompt",
        PROMPT,
        "--num-videos",
        "30",
        "--steps",
        "1",
        "--quiet",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    assert main(argv) == EXIT_INTERRUPTED
    _check_kept(out, 3)
    assert (out / "grid.png").is_file()  # of the three
    assert "interrupted: 3 of 30 videos kept" in capsys.readouterr().err


def test_demo_interrupted_keeps_a_gallery_of_what_was_made(tmp_path, monkeypatch):
    _interrupt_on_call(monkeypatch, 3)
    out = tmp_path / "demo"
    assert main(["demo", "--steps", "1", "--threads", "1", "--out", str(out)]) == EXIT_INTERRUPTED
    page = (out / "index.html").read_text()
    assert page.count("<figure>") == 2 and "video-001.gif" in page
    assert all((out / f"video-00{i}.gif").is_file() for i in range(2))
    assert not (out / "video-002.gif").exists() and _leftovers(out) == []


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_a_video_interrupted_while_written_leaves_the_old_file_or_none(
    tmp_path, monkeypatch, suffix
):
    video = np.random.default_rng(0).random((16, 8, 8, 3), dtype=np.float32)
    target = tmp_path / f"video{suffix}"
    write_video(target, video[:4])
    before = target.read_bytes()
    from PIL import Image

    save, encode = Image.Image.save, av.VideoFrame.from_ndarray
    frames = []

    def encode_then_stop(*args, **kwargs):  # Ctrl-C after a few frames of the mp4
        frames.append(1)
        if len(frames) > 5:
            raise KeyboardInterrupt
        return encode(*args, **kwargs)

    def save_then_stop(self, fp, *args, **kwargs):  # Ctrl-C once half the gif is on disk
        save(self, fp, *args, **kwargs)
        with open(fp, "r+b") as f:
            f.truncate(os.path.getsize(fp) // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", encode_then_stop)
    monkeypatch.setattr(Image.Image, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        write_video(target, video)
    assert target.read_bytes() == before  # the old file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    target.unlink()
    with pytest.raises(KeyboardInterrupt):
        write_video(target, video)
    assert list(tmp_path.iterdir()) == []  # no file rather than half a file


def test_ctrl_c_in_a_real_sample_run(tmp_path):
    """SIGINT to a running `cmdvideo sample` of 300 videos (far more than it makes before the
    signal, even on a loaded machine), as Ctrl-C in a terminal sends it: exit 130, and the
    videos finished so far are kept, whole and listed."""
    out = tmp_path / "samples"
    argv = [
        sys.executable,
        "-X",
        "faulthandler",
        "-m",
        "cmdvideo.cli",
        "sample",
        "--prompt",
        PROMPT,
        "--num-videos",
        "300",
        "--steps",
        "10",
        "--threads",
        "1",
        "--quiet",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=default_sigint,
    )
    try:
        deadline = time.monotonic() + 180
        while not (out / "video-001.gif").exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "no video after 180 s"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            text, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # still running: where it is (faulthandler), then fail
            os.kill(proc.pid, signal.SIGABRT)
            pytest.fail(
                f"no exit 60 s after SIGINT; its stacks:\n{proc.communicate(timeout=30)[0]}"
            )
    finally:
        if proc.poll() is None:  # a hang: end the whole process group, then fail
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == EXIT_INTERRUPTED, text
    kept = len(read_sample_folder(out))
    assert 2 <= kept < 300 and f"interrupted: {kept} of 300 videos kept" in text
    _check_kept(out, kept)


def test_videos_of_an_earlier_run_in_the_folder_are_pointed_out(tmp_path, caplog):
    from cmdvideo.pipelines.sample_folder import SampleFolder

    video = np.zeros((4, 8, 8, 3), np.float32)
    with SampleFolder(tmp_path, upscale=1) as folder:
        for name in ("a", "b", "c"):
            folder.add(video, name)
    with caplog.at_level("WARNING"), SampleFolder(tmp_path, upscale=1) as folder:
        folder.add(video, "d")
    assert "holds 2 videos of an earlier run (video-001.mp4 ...), not in prompts.txt" in caplog.text
    assert [name for _, name in read_sample_folder(tmp_path)] == ["d"]


def test_ctrl_c_between_a_videos_files_and_its_listing_still_lists_it(tmp_path, monkeypatch):
    """SIGINT right after a video's files are written, before prompts.txt names it: the video
    is listed, then the interrupt is raised (a whole video is never left unlisted)."""
    import cmdvideo.pipelines.sample_folder as samples

    written = samples.write_sample_video

    def then_ctrl_c(*args, **kwargs):
        paths = written(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # delivered to this, the main, thread
        return paths

    monkeypatch.setattr(samples, "write_sample_video", then_ctrl_c)
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    folder = samples.SampleFolder(tmp_path, upscale=1)
    with pytest.raises(KeyboardInterrupt):
        folder.add(frames, "first")
    assert [p.name for p, _ in read_sample_folder(tmp_path)] == ["video-000.mp4"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

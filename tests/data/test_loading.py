"""Data-loader workers: they never hang after the main process has decoded video, see every
epoch while living for the whole run, and a stuck one becomes an error naming its files; a test
that hangs fails within its time limit, with the stacks."""

import sys
import textwrap
import time
from types import SimpleNamespace

import pytest
import torch
from conftest import run_isolated, write_test_video
from torch.utils.data import DataLoader

from cmdvideo.data import collate_videos
from cmdvideo.data.batch import EpochIndex, VideoDataset
from cmdvideo.data.video_folder import VideoFolder
from cmdvideo.training.loading import (
    EpochShuffleSampler,
    LoaderTimeout,
    batches_in_time,
    training_loader,
)


@pytest.fixture
def clips(tmp_path):
    for name in ("a", "b", "c", "d"):
        write_test_video(tmp_path / f"{name}.mp4", 30)
    return tmp_path


def data_config(workers=2, method="fork", timeout=60.0):
    return SimpleNamespace(
        num_workers=workers, worker_start_method=method, loader_timeout=timeout, seed=0
    )


def folder(root):
    return VideoFolder(root, num_frames=8, height=16, width=16, seed=3)


def test_an_epoch_index_brings_its_epoch(clips):
    ds = folder(clips)
    ds.set_epoch(1)
    epoch1 = [ds[i]["video"] for i in range(4)]
    ds.set_epoch(0)
    assert all(torch.equal(ds[EpochIndex(i, 1)]["video"], epoch1[i]) for i in range(4))
    assert not all(torch.equal(ds[i]["video"], epoch1[i]) for i in range(4))
    assert EpochIndex(2, 5) == 2 and ds[EpochIndex(2, 5)]["index"] == 2


def test_persistent_workers_see_every_epoch_as_the_main_process_does(clips):
    """Forked after the main process decoded (the hang's trigger), kept across epochs: each
    epoch's clips and order equal the in-process loader's."""
    ds = folder(clips)
    ds[0]  # decode in the main process first
    epochs = {}
    for workers in (0, 2):
        sampler = EpochShuffleSampler(len(ds), seed=0)
        loader = training_loader(ds, sampler, 2, data_config(workers))
        seen = []
        for epoch in range(3):
            sampler.epoch = epoch
            ds.set_epoch(0)  # stale on purpose: the index carries the epoch
            seen.append(torch.cat([b["video"] for b in loader]))
        epochs[workers] = seen
    assert all(torch.equal(a, b) for a, b in zip(epochs[0], epochs[2]))
    assert not torch.equal(epochs[0][0], epochs[0][1])


class Stuck(VideoDataset):
    """Item 2 takes far longer than the loader waits."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        if index == 2:
            time.sleep(4)
        return {"video": torch.zeros(3, 2, 4, 4), "index": int(index)}

    def describe(self, index):
        return f"clip-{int(index)}.mp4"


def test_a_stuck_worker_is_an_error_naming_its_file():
    ds = Stuck()
    sampler = EpochShuffleSampler(len(ds), seed=0, shuffle=False)
    loader = training_loader(ds, sampler, 2, data_config(timeout=1.0))
    received = []
    with pytest.raises(LoaderTimeout, match=r"batch 1 of this epoch reads clip-2.mp4, clip-3.mp4"):
        for batch in batches_in_time(loader, loader, ds, 0, 1.0):
            received.append(batch["index"].tolist())
    assert received == [[0, 1]]


def test_bad_loader_settings_are_refused(clips):
    ds = folder(clips)
    with pytest.raises(ValueError, match="data.num_workers"):
        training_loader(ds, EpochShuffleSampler(4, 0), 2, data_config(workers=-1))
    with pytest.raises(ValueError, match="data.loader_timeout"):
        training_loader(ds, EpochShuffleSampler(4, 0), 2, data_config(timeout=-1))


@pytest.mark.parametrize("method,runs", [("fork", 20), ("forkserver", 2), ("spawn", 2)])
def test_loaders_after_a_read_in_the_main_process_never_hang(clips, method, runs):
    """A user's plain DataLoader (no settings of ours but the start method), made again and
    again after the main process decoded: every pass ends (a stuck one would time out)."""
    ds = folder(clips)
    for i in range(runs):
        ds[i % len(ds)]
        loader = DataLoader(
            ds,
            batch_size=2,
            num_workers=2,
            collate_fn=collate_videos,
            multiprocessing_context=method,
            timeout=60,
        )
        assert sum(len(b["video"]) for b in loader) == len(ds)


def test_a_hanging_test_fails_within_its_limit_with_the_stacks(tmp_path):
    """The suite's time limit (pytest-timeout, set in pyproject.toml): a test that never ends
    fails, the session goes on, and the report shows where every thread was."""
    (tmp_path / "test_hangs.py").write_text(
        textwrap.dedent(
            """
            import threading, time

            def wait_for_a_lock_nobody_releases():
                lock = threading.Lock()
                lock.acquire()
                lock.acquire()

            def idle_in_another_thread():
                time.sleep(600)

            def test_hangs():
                threading.Thread(target=idle_in_another_thread, daemon=True).start()
                wait_for_a_lock_nobody_releases()

            def test_after():
                pass
            """
        )
    )
    started = time.monotonic()
    result = run_isolated(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--timeout",
            "3",
            "-o",
            "addopts=",
            str(tmp_path / "test_hangs.py"),
        ],
        timeout=120,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Timeout" in output and "1 failed, 1 passed" in output, output
    assert "wait_for_a_lock_nobody_releases" in output, output  # the test's own thread
    assert "idle_in_another_thread" in output, output  # and the others
    assert time.monotonic() - started < 60

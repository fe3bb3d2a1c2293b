"""Processes end cleanly: a multi-process run shuts its process group down itself (before the
interpreter's teardown, where gloo's destructor once deadlocked), and a test that starts
processes leaves none behind when they hang."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from conftest import kill_tree, run_isolated

END_OF_RUN = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method="file://" + sys.argv[1], rank=0, world_size=1)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 2))  # holds the group
    model(torch.randn(3, 4)).sum().backward()
    dist.barrier()
    from cmdvideo.cli import _end_processes

    _end_processes(barrier=True)  # what every cmdvideo command does last
    print("initialized after:", dist.is_initialized())
    """
)


def test_a_run_ends_its_process_group_itself(tmp_path):
    proc = run_isolated([sys.executable, "-c", END_OF_RUN, str(tmp_path / "store")], timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "initialized after: False" in proc.stdout


HANGING_LAUNCHER = textwrap.dedent(
    """
    import subprocess, sys, time
    # like torchrun: the worker gets a session of its own, then both hang
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                             start_new_session=True)
    open(sys.argv[1], "w").write(str(child.pid))
    time.sleep(600)
    """
)


def test_a_hanging_command_is_killed_with_everything_it_started(tmp_path):
    pid_file = tmp_path / "worker.pid"
    start = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="ran past 5 s"):
        run_isolated([sys.executable, "-c", HANGING_LAUNCHER, str(pid_file)], timeout=5)
    assert time.monotonic() - start < 60
    worker = int(pid_file.read_text())
    assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == "zombie"


INNER_TEST = textwrap.dedent(
    """
    import sys
    from conftest import run_isolated

    def test_hangs():
        run_isolated([sys.executable, "-c", {launcher!r}, {pid_file!r}], timeout=600)
    """
)


def test_a_terminated_test_session_leaves_nothing_running(tmp_path):
    """SIGTERM to pytest (an outer timeout) still kills what run_isolated started."""
    pid_file = tmp_path / "worker.pid"
    inner = tmp_path / "test_inner.py"
    inner.write_text(INNER_TEST.format(launcher=HANGING_LAUNCHER, pid_file=str(pid_file)))
    tests = Path(__file__).parents[1]  # where conftest.py is
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "conftest",
        "-p",
        "no:cacheprovider",
        str(inner),
    ]
    session = subprocess.Popen(
        argv,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tests)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not pid_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pid_file.is_file(), "the inner test never started its worker"
        time.sleep(0.5)
        session.terminate()
        session.communicate(timeout=60)
    finally:
        if session.poll() is None:
            kill_tree(session)
    worker = int(pid_file.read_text())
    time.sleep(0.5)
    alive = psutil.pid_exists(worker) and psutil.Process(worker).status() != "zombie"
    if alive:  # the failure this test is about: don't leave it running
        psutil.Process(worker).kill()
    assert not alive, "the worker outlived the terminated test session"

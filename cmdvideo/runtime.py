"""Process-level settings: how many CPU threads torch should use here and now — for the
command line (at start, ``cli.common.apply_threads``) and for the library (around each
generating call of a pipeline, :class:`cpu_threads`)."""

from __future__ import annotations

import functools
import os
import time
from contextlib import contextmanager


def busy_cores(interval: float = 0.2) -> float:
    """Cores other processes keep busy now, from two readings of /proc/stat (0 where there is
    no /proc, e.g. macOS)."""

    def read() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return sum(values), idle

    try:
        total0, idle0 = read()
        time.sleep(interval)
        total1, idle1 = read()
    except (OSError, ValueError, IndexError):
        return 0.0
    cores = os.cpu_count() or 1
    return cores * (1 - (idle1 - idle0) / max(total1 - total0, 1))


def default_threads() -> int:
    """The thread rule (measured in docs/efficiency.md): the cores this process may use, less
    those other processes keep busy now, divided among the processes of a run started by
    torchrun / accelerate on this machine; at least 1."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    free = (usable or 1) - round(busy_cores())
    return max(1, free // max(local_processes, 1))


# -- the library's share of the rule -------------------------------------------------------

AUTO = "auto"
RULE_MAX_AGE = 30.0  # seconds a reading of the load is reused (a reading takes 0.2 s)
_rule_reading: tuple[float, int] | None = None  # (time.monotonic() of the reading, threads)


def rule_threads(max_age: float = RULE_MAX_AGE) -> int:
    """:func:`default_threads`, read again at most every ``max_age`` seconds."""

    global _rule_reading
    now = time.monotonic()
    if _rule_reading is None or now - _rule_reading[0] > max_age:
        _rule_reading = (now, default_threads())
    return _rule_reading[1]


def threads_chosen_by_user() -> bool:
    """Whether torch's CPU threads were chosen for this process rather than left at torch's
    default: ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` in the environment, or
    ``torch.set_num_threads`` to a number other than torch's default. Torch's default is one
    thread per physical core, which is also its inter-op thread count until that is set; where
    the two defaults differ (some containers) this says True, and the library leaves torch as it
    is."""
    import torch

    if any(os.environ.get(name, "").strip() for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")):
        return True
    return torch.get_num_threads() != torch.get_num_interop_threads()


def resolve_threads(threads: int | str | None) -> int | None:
    """The torch CPU threads a library call should run with: ``threads`` itself (an int),
    the rule (``"auto"``) unless the user chose threads (:func:`threads_chosen_by_user`), or
    None: leave torch as it is."""
    if threads is None:
        return None
    if threads == AUTO:
        return None if threads_chosen_by_user() else rule_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, 'auto' or None, got {threads!r}")
    return threads


@contextmanager
def cpu_threads(threads: int | str | None = AUTO):
    """Run a block with torch's CPU threads set by :func:`resolve_threads`, then put back the
    number there was: ``with cpu_threads("auto"): ...``. Yields the threads in use."""
    import torch

    wanted, before = resolve_threads(threads), torch.get_num_threads()
    if wanted is None or wanted == before:
        yield before
        return
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(before)


def uses_cpu_threads(method):
    """Decorate a generating method of an object with ``threads`` and ``device`` attributes (a
    pipeline): on a CPU it runs inside ``cpu_threads(self.threads)``."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if getattr(self.device, "type", "cpu") != "cpu":
            return method(self, *args, **kwargs)
        with cpu_threads(getattr(self, "threads", AUTO)):
            return method(self, *args, **kwargs)

    return wrapper

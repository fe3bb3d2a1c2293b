"""Process-level settings: how many CPU threads torch should use here and now."""

from __future__ import annotations

import os


def busy_cores(interval: float = 0.2) -> float:
    """Cores other processes keep busy now, from two readings of /proc/stat (0 where there is
    no /proc, e.g. macOS)."""
    import time

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

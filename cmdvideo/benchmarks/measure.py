"""Wall time and peak memory of a job, as ``cmdvideo bench`` measures them at tiny scale: medians
of repeated runs after a warm-up, and the peak memory of a process (best a fresh one per job)."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

import torch


class PeakMemory:
    """Peak memory of this process from construction on, in MiB, and how it was measured.

    - CUDA: the caching allocator's peak (``torch.cuda.max_memory_allocated`` after a reset):
      every tensor (weights, activations, optimizer state), like the paper's GPU figures.
    - CPU on Linux: the kernel's resident-set high-water mark (``VmHWM``), reset at
      construction through ``/proc/self/clear_refs``, minus the resident set then (``VmRSS``).
      tracemalloc does not see torch's allocations; RSS does, with allocator and library
      overhead (e.g. oneDNN scratch buffers). Memory freed earlier but kept by the allocator
      is reused without raising RSS, so only a fresh process measures a job alone: the
      benchmark runs each job in its own (``isolate``).
    - CPU elsewhere: the growth of ``getrusage``'s ``ru_maxrss``, a lower bound (the process's
      earlier peak, e.g. during imports, hides whatever stays below it).
    """

    def __init__(self, device: str):
        self.device = torch.device(device)
        self.start: int | None = None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.method = "CUDA allocator peak (torch.cuda.max_memory_allocated)"
        elif _reset_peak_rss():
            self.start = _proc_status_bytes("VmRSS")
            self.method = "peak RSS (VmHWM, reset at the job's start) minus RSS at its start"
        else:
            self.start = _ru_maxrss_bytes()
            self.method = "growth of getrusage ru_maxrss (a lower bound)"

    def peak_mib(self) -> float | None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        if self.start is None:
            return None
        peak = _proc_status_bytes("VmHWM") if "VmHWM" in self.method else _ru_maxrss_bytes()
        return round((peak - self.start) / 2**20, 1)


def _reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _proc_status_bytes("VmHWM") is not None
    except OSError:
        return False


def _proc_status_bytes(field: str) -> int | None:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    return None


def _ru_maxrss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def median_seconds(fn: Callable[[], object], repeats: int, device: str, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` untimed runs."""

    def sync():
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_average() -> list[float] | None:
    """The system's 1, 5 and 15 minute load averages (None where the OS has none): how busy
    the machine was while it was timed."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None

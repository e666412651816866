"""Timing shared by the benchmark scripts."""
from __future__ import annotations

import os
import subprocess
import sys
import time


def best_of(fn, repeat: int, min_time: float = 0.05) -> float:
    """Best seconds per call of fn() over `repeat` rounds, each round long
    enough (min_time) for the clock; the best round is the least disturbed."""
    loops = 1
    while True:
        t = time.perf_counter()
        for _ in range(loops):
            fn()
        dt = time.perf_counter() - t
        if dt >= min_time or loops >= 1 << 20:
            break
        loops *= 2
    best = dt / loops
    for _ in range(repeat - 1):
        t = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - t) / loops)
    return best


def run_command(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one run of cmd (os.environ updated
    by env); exits with its stderr if it fails (exit status other than 0, 1)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **env})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed:\n{err}")
    return wall, usage.ru_maxrss

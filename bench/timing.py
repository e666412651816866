"""Timing shared by the benchmark scripts."""
from __future__ import annotations

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

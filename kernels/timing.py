"""Times a call: warm-up calls first, then many timed trials, summarised by their median and spread.

On a GPU a call only enqueues work, so each trial starts from an idle device (synchronised) and is bracketed
by CUDA events read after the device catches up; the host's launch overhead counts, as it does for a real
caller waiting on the result. On the CPU the work is done when the call returns, so the wall clock around
the call is the measure. Warm-up calls absorb one-off costs (JIT compilation, caches, allocator growth).

What is timed is never the candidate's process: the runtime reward replays the candidate's traced launches in
a sandbox that runs none of its host code (`timed_replay.py`), and times the reference in the evaluator. The
clocks are still bound when this module is imported, before any kernel module is executed there.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from time import perf_counter
from typing import Callable, Protocol

import torch

_CudaEvent = torch.cuda.Event
_cuda_synchronize = torch.cuda.synchronize


class Clock(Protocol):
    def seconds(self, call: Callable[[], object]) -> float: ...


class WallClock:
    def seconds(self, call: Callable[[], object]) -> float:
        start = perf_counter()
        call()
        return perf_counter() - start


class CudaClock:
    def seconds(self, call: Callable[[], object]) -> float:
        start, end = _CudaEvent(enable_timing=True), _CudaEvent(enable_timing=True)
        _cuda_synchronize()
        start.record()
        call()
        end.record()
        _cuda_synchronize()
        return start.elapsed_time(end) / 1000.0


def clock_for(device: str) -> Clock:
    return CudaClock() if device == "cuda" else WallClock()


@dataclass(frozen=True)
class Timing:
    median_s: float
    # Interquartile range of the trials: how far to trust the median on a busy machine.
    spread_s: float
    trials: int

    @staticmethod
    def of(samples: list[float]) -> Timing:
        quartiles = statistics.quantiles(samples, n=4)
        return Timing(statistics.median(samples), quartiles[2] - quartiles[0], len(samples))

    def __str__(self) -> str:
        return f"{_human(self.median_s)} (IQR {_human(self.spread_s)})"


def measure(
    call: Callable[[], object], clock: Clock, warmup: int, trials: int,
    reset: Callable[[], object] = lambda: None, verify: Callable[[], object] = lambda: None,
) -> Timing:
    """`reset` runs before every call and `verify` after it (warm-up calls included), both outside the timed
    region: a replay restores its memory in `reset` and checks each call's output in `verify`."""
    if trials < 2:
        raise ValueError("a spread needs at least 2 trials")
    for _ in range(warmup):
        reset()
        call()
        verify()
    samples = []
    for _ in range(trials):
        reset()
        samples.append(clock.seconds(call))
        verify()
    return Timing.of(samples)


def _human(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"

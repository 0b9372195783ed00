"""The runtime reward: the candidate's speedup over the PyTorch reference, mapped onto [0, 1].

Only a candidate that passed every correctness trial with no hack found is timed: on a GPU on the problem's
benchmark case (large enough that a kernel's time is not just launch overhead), in the CPU test mode on the
correctness inputs with the most elements. The candidate's process is never timed: its entrypoint was traced
on the timed inputs together with the trials, and a sandbox that runs none of its host code replays that trace
(its host copies and kernel launches) on fresh inputs of the same layout, drawn after the tracing sandbox is
gone, and times the replay (`timed_replay.py`). The reference is computed and timed here, in the trusted
evaluator, on the same fresh inputs and device with the same clock; every timed call's output entries that
the sandbox sampled after it are checked against that result here.

Devices: "cuda" times the compiled kernels on the GPU (the default where the runner sees one); "cpu" times
the Triton interpreter against torch on the CPU, which says nothing about kernel speed but exercises the
whole mechanism on a machine without a GPU; "off" skips the measurement.
"""
from __future__ import annotations

import ast
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from .candidate import run_sandboxed
from .dataset.problem import Args, Problem
from .kernel_module import kernel_module
from .reward import Reward
from .sandbox import Limits, Outcome
from .timed_replay import time_replay
from .timing import Timing, clock_for, measure
from .trace import TensorRef, Trace, TracedCall, copy_args
from .violation import Violation

RUNTIME_DEVICES = ("cuda", "cpu", "off")
NO_GPU = "not measured: runtime needs a GPU and the runner has none (request runtime_device 'cpu' to test the mechanism)"


@dataclass(frozen=True)
class TimingPlan:
    warmup: int
    trials: int


# A GPU call takes microseconds, so many trials are cheap; the interpreter takes milliseconds per call and the
# CPU mode only tests the mechanism, so it keeps to a few.
PLANS = {"cuda": TimingPlan(warmup=10, trials=100), "cpu": TimingPlan(warmup=2, trials=10)}


def speedup_score(speedup: float) -> float:
    """s / (1 + s) = t_ref / (t_ref + t_candidate): 0.5 at parity, 2/3 at 2x, 0.8 at 4x, 1/3 at half speed.

    Strictly increasing, and symmetric on a log scale (score(s) + score(1/s) = 1). It never saturates, so
    every further speedup, and every step out of slowness, still earns something: a clipped scale would give
    no signal to the many candidates far slower than torch.
    """
    if not speedup >= 0.0:  # negative or NaN
        raise ValueError(f"a speedup must be a non-negative number, got {speedup}")
    return 1.0 if math.isinf(speedup) else speedup / (1.0 + speedup)


@dataclass(frozen=True)
class TimedCase:
    """The inputs the runtime reward times the candidate on, and the shape case they were drawn for."""

    shape: tuple[int, ...]
    inputs: Args

    @staticmethod
    def of(problem: Problem, trial_inputs: list[Args], device: str, seed: int) -> TimedCase:
        """On a GPU, the problem's benchmark case; in the CPU test mode the interpreter could not run it in time,
        so the correctness inputs with the most elements."""
        if device == "cuda":
            return TimedCase(tuple(problem.benchmark_shape), problem.benchmark_inputs(seed))
        trial = max(range(len(trial_inputs)), key=lambda t: sum(a.numel() for a in trial_inputs[t] if isinstance(a, torch.Tensor)))
        return TimedCase(problem.shape_of(trial), trial_inputs[trial])


def runtime_reward(
    problem: Problem,
    code: str | None,
    tree: ast.Module | None,
    timed: TimedCase | None,
    call: TracedCall | None,
    correctness: Reward,
    hacks: list[Violation],
    device: str | None,
    limits: Limits,
    temp_root: str | None,
) -> Reward:
    """`device` None means the runner has no GPU and the request named none. `call` is the tracing sandbox's
    trace of the entrypoint on `timed.inputs`; what is timed is its replay on fresh inputs of the same layout."""
    if device is None:
        return Reward(0.0, NO_GPU)
    if device == "off":
        return Reward(0.0, "not measured: runtime_device is 'off'")
    if hacks:
        return Reward(0.0, "not measured: reward hacking was detected")
    if code is None or tree is None or timed is None or correctness.score < 1.0:
        return Reward(0.0, "not measured: only a candidate that passes every correctness trial is timed")
    if call is None or call.trace is None:
        return Reward(0.0, f"not measured: the call on the timed inputs failed: {(call.error if call else None) or 'not traced'}")
    plan = PLANS[device]
    # Drawn now, when the tracing sandbox is gone: bytes it put in the trace cannot hold results for them.
    fresh = problem.fresh_inputs(timed.shape, timed.inputs)
    measured = _read_report(*_time_sandboxed(problem, code, tree, call.trace, fresh, timed.shape, device, plan, limits, temp_root), plan)
    if isinstance(measured, str):
        return Reward(0.0, f"timing run failed: {measured}")
    candidate, samples = measured
    on_device = copy_args(fresh, device)
    # Each call's inputs drawn again from its seed, and the reference computed on them only now, in this process:
    # the sandbox that ran the kernels never held a right output.
    wrong = wrong_timed_call(
        problem, call.trace.result, lambda seed: problem.reference(*problem.fresh_inputs(timed.shape, fresh, seed, device)), samples
    )
    if wrong is not None:
        return Reward(0.0, f"timing run failed: {wrong}")
    reference = measure(lambda: problem.reference(*on_device), clock_for(device), plan.warmup, plan.trials)
    speedup = reference.median_s / candidate.median_s
    caveat = " (CPU test mode: the Triton interpreter against torch, not a kernel speed)" if device == "cpu" else ""
    return Reward(
        speedup_score(speedup),
        f"speedup {speedup:.3g}x on {device}{caveat}: reference {reference}, candidate {candidate}; "
        f"medians of {plan.trials} trials after {plan.warmup} warm-up calls",
    )


def _time_sandboxed(
    problem: Problem, code: str, tree: ast.Module, trace: Trace, inputs: Args, shape: tuple[int, ...], device: str, plan: TimingPlan,
    limits: Limits, temp_root: str | None,
) -> tuple[dict[str, Any] | None, Outcome]:
    if device == "cuda":
        limits = dataclasses.replace(limits, cap_address_space=False)
    kernels = kernel_module(tree)
    child = lambda workdir, send: time_replay(  # noqa: E731
        problem, kernels, code, trace, inputs, shape, device, plan.warmup, plan.trials, workdir, send
    )
    return run_sandboxed(child, limits, temp_root)


def _read_report(report: dict[str, Any] | None, outcome: Outcome, plan: TimingPlan) -> tuple[Timing, list[Sample]] | str:
    """The replay's timing and its calls' sampled outputs, or why there are none; anything but a positive, finite
    time and one well-formed sample per call is a failure."""
    if report is None:
        tail = outcome.log_tail.strip().splitlines()[-1:]
        return f"{outcome.status}: {outcome.detail}" + (f" ({tail[0]})" if tail else "")
    if report.get("error"):
        return str(report["error"]).splitlines()[-1]
    if outcome.status != "ok":
        return f"{outcome.status}: {outcome.detail}"
    timing = report.get("timing")
    if not isinstance(timing, dict):
        return "the timing report is incomplete"
    median, spread, trials = timing.get("median_s"), timing.get("spread_s"), timing.get("trials")
    if not (isinstance(median, float) and isinstance(spread, float) and isinstance(trials, int)):
        return f"the timing report is malformed: {timing}"
    if not (math.isfinite(median) and math.isfinite(spread) and median > 0.0):
        return f"the timing report holds no valid time: {timing}"
    samples = report.get("samples")
    calls = plan.warmup + plan.trials
    if not (isinstance(samples, list) and len(samples) == calls and all(_well_formed(s) for s in samples)):
        return f"the timing report does not hold one sample of the output per call ({calls})"
    return Timing(median, spread, trials), [Sample(s["seed"], s["positions"], s["values"]) for s in samples]


@dataclass(frozen=True)
class Sample:
    """Entries of one timed call's output: `values[i]` is the entry at flat position `positions[i]`, for the
    inputs drawn from `seed`."""

    seed: int
    positions: torch.Tensor
    values: torch.Tensor


def _well_formed(sample: Any) -> bool:
    if not (isinstance(sample, dict) and set(sample) == {"seed", "positions", "values"}):
        return False
    seed, positions, values = sample["seed"], sample["positions"], sample["values"]
    return (
        type(seed) is int and 0 <= seed < 2**63 and isinstance(positions, torch.Tensor) and isinstance(values, torch.Tensor)
        and positions.dtype == torch.int64 and positions.dim() == 1 and values.dim() == 1 and 0 < positions.numel() == values.numel()
    )


def wrong_timed_call(
    problem: Problem, returned: TensorRef, reference_for: Callable[[int], torch.Tensor], samples: list[Sample]
) -> str | None:
    """Why a timed call's output (the trace's `returned` view) was not the reference's on that call's inputs
    (`reference_for(seed)`), checked on the call's sampled entries; None when every call's were right."""
    for number, sample in enumerate(samples, 1):
        expected = reference_for(sample.seed)
        if tuple(returned.shape) != tuple(expected.shape) or returned.dtype != expected.dtype:
            return f"the call returns {returned.dtype} {tuple(returned.shape)}, the reference {expected.dtype} {tuple(expected.shape)}"
        flat = expected.reshape(-1).cpu()
        positions = sample.positions
        if positions.min() < 0 or positions.max() >= flat.numel():
            return f"call {number} of {len(samples)} reported positions outside its output"
        if not problem.matches(sample.values, flat[positions]):
            return f"call {number} of {len(samples)} returned a wrong output"
    return None

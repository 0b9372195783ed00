"""The runtime reward's measurement: the candidate's traced call, replayed and timed in a sandbox that runs none
of the candidate's host code.

Like the replay sandbox (`replay.py`), this executes only the cut-down kernel module (`kernel_module.py`) and
the trace's host copies and launches (`trace.py`), here on fresh inputs the evaluator drew after the tracing
sandbox was gone, on the timed device: compiled kernels on a GPU, the interpreter in the CPU test mode. No
number the candidate's process wrote reaches the time: the clock is this module's, read around the replay.

Every call starts from the same memory: before each one (outside the timed region) the inputs and the trace's
buffers get back the bytes they held before the first call, so no call can leave work for the next, and the
output of every call, warm-up calls included, must match the reference on those inputs (computed here before
any kernel runs) and leave the inputs as they were: a call that does less than the checked work fails the
measurement, whichever call it is.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

import torch

from .candidate import CANDIDATE_FILE, Report, describe
from .dataset.problem import Args, Problem
from .interpreter_mode import switch_to_interpreter
from .replay import bind_trace, execute_kernels
from .timing import clock_for, measure
from .trace import Trace, copy_args, materialize


class WrongTimedCall(RuntimeError):
    pass


def time_replay(
    problem: Problem, kernel_tree: ast.Module, source: str, trace: Trace, inputs: Args, device: str, warmup: int, trials: int,
    workdir: Path, send: Report,
) -> None:
    """Report the timing of `trials` replays of `trace` on `inputs` after `warmup` untimed ones."""
    os.environ["TRITON_CACHE_DIR"] = str(workdir / "triton-cache")  # nothing shared with other candidates
    clock = clock_for(device)
    report: dict[str, Any] = {"error": None, "timing": None}
    try:
        source_path = workdir / CANDIDATE_FILE
        source_path.write_text(source)  # Triton reads each kernel's source from its file
        kernels_code = compile(kernel_tree, str(source_path), "exec")
        if device == "cpu":
            switch_to_interpreter()
        kernels = execute_kernels(kernels_code)
        args = copy_args(inputs, device)
        buffers = [b.to(device, copy=True) for b in trace.buffers]
        inputs_memory = [_bytes(a) for a in args if isinstance(a, torch.Tensor)]
        memory = inputs_memory + buffers
        pristine = [m.clone() for m in memory]
        expected = problem.reference(*copy_args(args))
        output = materialize(trace.result, args, buffers)
        call = bind_trace(kernels, trace, args, buffers)
        calls = 0

        def restore() -> None:
            for live, saved in zip(memory, pristine):
                live.copy_(saved)

        def verify() -> None:
            nonlocal calls
            calls += 1
            if not problem.matches(output, expected):
                raise WrongTimedCall(f"call {calls} of {warmup + trials} returned a wrong output")
            if not all(torch.equal(live, saved) for live, saved in zip(inputs_memory, pristine)):
                raise WrongTimedCall(f"call {calls} of {warmup + trials} modified its inputs")

        timing = measure(call, clock, warmup, trials, reset=restore, verify=verify)
        report["timing"] = {"median_s": timing.median_s, "spread_s": timing.spread_s, "trials": timing.trials}
    except BaseException as error:  # a kernel may raise anything, under the interpreter as on the device
        report["error"] = describe(error)
    send(report)


def _bytes(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's whole storage as flat bytes: restoring and comparing it covers every view of it."""
    return torch.empty(0, dtype=torch.uint8, device=tensor.device).set_(tensor.untyped_storage())

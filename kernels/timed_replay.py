"""The runtime reward's measurement: the candidate's traced call, replayed and timed in a sandbox that runs none
of the candidate's host code.

Like the replay sandbox (`replay.py`), this executes only the cut-down kernel module (`kernel_module.py`) and
the trace's host copies and launches (`trace.py`), here on fresh inputs the evaluator drew after the tracing
sandbox was gone, on the timed device: compiled kernels on a GPU, the interpreter in the CPU test mode. No
number the candidate's process wrote reaches the time: the clock is this module's, read around the replay.

Every call gets inputs of its own: before each one (outside the timed region) the inputs are drawn afresh, on
the timed device, from a seed taken then from the operating system's randomness, and the trace's buffers get
back the bytes they held before the first call. So no call can leave work for the next: a result computed once
and kept anywhere in the process (on a GPU compiled kernels are not bounds-checked, so anywhere in its device
memory, the saved copies of the buffers included) is wrong for the next call's inputs. Every call, warm-up
calls included, must leave its inputs as they were drawn. Its output is checked by the evaluator, not here: the
reference's result never exists in this process, so no call can copy it instead of computing it. After each
call, SAMPLED_ENTRIES of its output, at positions drawn only then, go into the report with the call's seed; the
evaluator draws the same inputs from that seed, computes the reference on them itself and compares. A call that
leaves part of its output unwritten or wrong cannot know which entries will be read, so it fails the
measurement with near certainty whichever call it is (a call wrong on 1 % of its entries escapes one check with
probability 0.99^1024 ≈ 3e-5). Interpreted (CPU mode), every launch also runs under the memory guard's bounds
check (`memory_guard.py`); races were judged by the replay.
"""
from __future__ import annotations

import ast
import os
import secrets
from pathlib import Path
from typing import Any

import torch

from .candidate import Report, describe, write_source
from .dataset.problem import Args, Problem
from .interpreter_mode import switch_to_interpreter
from .memory_guard import MemoryGuard
from .replay import bind_trace, execute_kernels
from .timing import clock_for, measure
from .trace import Trace, copy_args, materialize
from .triton_internals import watch_interpreted_memory


# Output entries each call reports (all of them when it has fewer).
SAMPLED_ENTRIES = 1024


class WrongTimedCall(RuntimeError):
    pass


def time_replay(
    problem: Problem, kernel_tree: ast.Module, source: str, trace: Trace, inputs: Args, shape: tuple[int, ...], device: str,
    warmup: int, trials: int, workdir: Path, send: Report,
) -> None:
    """Report the timing of `trials` replays of `trace` after `warmup` untimed ones, each on inputs of `shape`
    drawn afresh in the layout of `inputs`."""
    os.environ["TRITON_CACHE_DIR"] = str(workdir / "triton-cache")  # nothing shared with other candidates
    clock = clock_for(device)
    report: dict[str, Any] = {"error": None, "timing": None}
    try:
        source_path = write_source(workdir, source)  # Triton reads each kernel's source from its file
        kernels_code = compile(kernel_tree, str(source_path), "exec")
        if device == "cpu":
            switch_to_interpreter()
            watch_interpreted_memory(MemoryGuard(races=False))
        kernels = execute_kernels(kernels_code)
        args = copy_args(inputs, device)
        buffers = [b.to(device, copy=True) for b in trace.buffers]
        inputs_memory = [_bytes(a) for a in args if isinstance(a, torch.Tensor)]
        pristine = [b.clone() for b in buffers]
        output = materialize(trace.result, args, buffers)
        call = bind_trace(kernels, trace, args, buffers)
        samples: list[dict[str, Any]] = []
        seed, drawn = 0, list[torch.Tensor]()  # this call's seed and its inputs as drawn

        def prepare() -> None:
            nonlocal seed, drawn
            seed = secrets.randbits(63)
            drawn = [_bytes(a) for a in problem.fresh_inputs(shape, inputs, seed, device) if isinstance(a, torch.Tensor)]
            for live, new in zip(inputs_memory, drawn):
                live.copy_(new)
            for live, saved in zip(buffers, pristine):
                live.copy_(saved)

        def verify() -> None:
            if not all(torch.equal(live, new) for live, new in zip(inputs_memory, drawn)):
                raise WrongTimedCall(f"call {len(samples) + 1} of {warmup + trials} modified its inputs")
            samples.append({**sample_entries(output), "seed": seed})

        timing = measure(call, clock, warmup, trials, reset=prepare, verify=verify)
        report["timing"] = {"median_s": timing.median_s, "spread_s": timing.spread_s, "trials": timing.trials}
        report["samples"] = samples
    except BaseException as error:  # a kernel may raise anything, under the interpreter as on the device
        report["error"] = describe(error)
    send(report)


def sample_entries(output: torch.Tensor) -> dict[str, torch.Tensor]:
    """SAMPLED_ENTRIES entries of `output` (every one when it has no more) at flat positions drawn now from the
    operating system's randomness, which no kernel that ran before could predict; gathered without copying the
    whole output, so no second copy of it outlives the call."""
    count = output.numel()
    if count <= SAMPLED_ENTRIES:
        positions = torch.arange(count)
    else:
        generator = torch.Generator().manual_seed(secrets.randbits(63))
        positions = torch.randint(count, (SAMPLED_ENTRIES,), generator=generator)
    index = torch.unravel_index(positions.to(output.device), tuple(output.shape))
    # A copy even where the output already is on the CPU (a scalar's index is a view of it).
    return {"positions": positions, "values": output[index].reshape(-1).to("cpu", copy=True)}


def _bytes(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's whole storage as flat bytes: restoring and comparing it covers every view of it."""
    return torch.empty(0, dtype=torch.uint8, device=tensor.device).set_(tensor.untyped_storage())

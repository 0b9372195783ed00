"""The replay sandbox: runs the candidate's kernels as its traces ask, and none of its host code.

It executes only the cut-down kernel module (`kernel_module.py`: imports, literal constants, `@triton.jit`
definitions), compiles every specialisation of a kernel that the traces launch for the GPU target, then switches to
the interpreter and replays every trial's trace (`trace.py`: its host copies and launches): three times, each on fresh copies of the
buffers and of the inputs: on the trial's inputs, again on them (determinism; the first run's memory is kept
alive so the second gets other addresses), and on the fresh inputs the evaluator drew after the tracing
sandbox was gone. Every interpreted launch runs under the memory guard (`memory_guard.py`): an access outside
the tensors the launch was given, or programs of one launch racing on the same bytes, fails the trial. It reports
the returned views and the inputs after the first run; the evaluator judges them.
"""
from __future__ import annotations

import ast
import functools
import os
from pathlib import Path
from types import CodeType
from typing import Any, Callable

import torch

from .candidate import Report, describe, write_source
from .interpreter_mode import switch_to_interpreter
from .memory_guard import MemoryGuard
from .offline_compile import offline_kernel
from .trace import KernelLaunch, Trace, TensorRef, copy_args, materialize
from .triton_internals import KERNEL_CLASSES, InterpretedOrder, OfflineKernel, control_interpreted_order, watch_interpreted_memory


def replay_candidate(
    kernel_tree: ast.Module, source: str, traces: list[Trace | None], inputs: list[tuple[Any, ...]],
    fresh_inputs: list[tuple[Any, ...]], workdir: Path, send: Report,
) -> None:
    """`traces[i]` is None where trial i has nothing to replay (the tracing sandbox failed it)."""
    os.environ["TRITON_CACHE_DIR"] = str(workdir / "triton-cache")  # nothing shared with other candidates
    source_path = write_source(workdir, source)  # Triton reads each kernel's source from its file
    kernels_code = compile(kernel_tree, str(source_path), "exec")
    report: dict[str, Any] = {"kernels": [], "trials": [], "finished": False}
    report["kernels"] = _compile_launched_kernels(kernels_code, traces, inputs)
    send(report)
    switch_to_interpreter()
    order = control_interpreted_order()
    watch_interpreted_memory(MemoryGuard(races=True))
    kernels = execute_kernels(kernels_code)
    for trace, args, fresh in zip(traces, inputs, fresh_inputs):
        report["trials"].append(None if trace is None else _replay_trial(kernels, trace, args, fresh, order))
        send(report)
    report["finished"] = True
    send(report)


def _replay_trial(kernels: dict[str, Any], trace: Trace, inputs: tuple[Any, ...], fresh: tuple[Any, ...],
                  order: InterpretedOrder) -> dict[str, Any]:
    """The trace run on the trial's inputs, again, with the programs and atomic lanes in another order, and on fresh inputs."""
    memory: list[Any] = []  # every run's buffers and inputs stay alive until the trial is done
    try:
        args = copy_args(inputs)
        output = _run(kernels, trace, args, memory)
        again = _run(kernels, trace, copy_args(inputs), memory)
        order.shuffled = True
        try:
            reordered = _run(kernels, trace, copy_args(inputs), memory)
        finally:
            order.shuffled = False
        fresh_output = _run(kernels, trace, copy_args(fresh), memory)
    except BaseException as error:  # a kernel may raise anything under the interpreter
        return {"error": describe(error)}
    return {"error": None, "output": output, "again": again, "reordered": reordered, "fresh": fresh_output,
            "inputs_after": [a for a in args if isinstance(a, torch.Tensor)]}


def _run(kernels: dict[str, Any], trace: Trace, args: tuple[Any, ...], memory: list[Any]) -> torch.Tensor:
    buffers = [buffer.clone() for buffer in trace.buffers]
    memory.append((args, buffers))
    bind_trace(kernels, trace, args, buffers)()
    return materialize(trace.result, args, buffers).clone()


def bind_trace(kernels: dict[str, Any], trace: Trace, args: tuple[Any, ...], buffers: list[torch.Tensor]) -> Callable[[], None]:
    """The trace's copies and launches, in the wrapper's order, bound to these inputs and buffers: calling the
    result runs them (every view is resolved here, so a timed call does only the work itself)."""
    steps: list[Callable[[], object]] = []
    copies = iter(trace.copies)
    pending = next(copies, None)
    for index in range(len(trace.launches) + 1):
        while pending is not None and pending.before_launch == index:
            target, source = materialize(pending.target, args, buffers), materialize(pending.source, args, buffers)
            steps.append(functools.partial(target.copy_, source))
            pending = next(copies, None)
        if index < len(trace.launches):
            launch = trace.launches[index]
            positional, keywords = _arguments(launch, args, buffers)
            steps.append(functools.partial(_kernel(kernels, launch.kernel)[launch.grid], *positional, **keywords))

    def run() -> None:
        for step in steps:
            step()

    return run


def _compile_launched_kernels(kernels_code: CodeType, traces: list[Trace | None], inputs: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Every specialisation of a kernel that the traces launch, compiled for the GPU target: one entry per distinct
    code a GPU would run (a launch whose constexprs, dtypes or alignments differ from every earlier launch's is
    compiled too; the interpreter would run code there that the compiler refuses)."""
    launches = [(trial, number, launch, trace, args)
                for trial, (trace, args) in enumerate(zip(traces, inputs)) if trace is not None
                for number, launch in enumerate(trace.launches)]
    try:
        kernels = execute_kernels(kernels_code)
    except BaseException as error:
        failure = f"the module's kernels do not import: {describe(error)}"
        return [{"name": launches[0][2].kernel, "compiled": False, "error": failure}] if launches else []
    results: list[dict[str, Any]] = []
    offline: dict[str, OfflineKernel] = {}
    compiled: set[tuple[str, str]] = set()
    for trial, number, launch, trace, args in launches:
        try:
            if launch.kernel not in offline:
                offline[launch.kernel] = offline_kernel(_kernel(kernels, launch.kernel).fn)
            positional, keywords = _arguments(launch, args, [buffer.clone() for buffer in trace.buffers])
            key, compile_it = offline[launch.kernel].specialise(tuple(positional), keywords)
            if (launch.kernel, key) in compiled:
                continue
            compiled.add((launch.kernel, key))
            compile_it()
            results.append({"name": launch.kernel, "compiled": True, "error": None})
        except BaseException as error:
            results.append({"name": launch.kernel, "compiled": False, "error": f"launch {number} of trial {trial}: {describe(error)}"})
    return results


def execute_kernels(kernels_code: CodeType) -> dict[str, Any]:
    """The cut-down module's namespace (running it runs nothing of the candidate's: `kernel_module.py`)."""
    namespace: dict[str, Any] = {"__name__": "candidate", "__file__": kernels_code.co_filename}
    exec(kernels_code, namespace)
    return namespace


def _kernel(kernels: dict[str, Any], name: str) -> Any:
    kernel = kernels.get(name)
    if not isinstance(kernel, KERNEL_CLASSES):
        raise NameError(f"the module defines no @triton.jit kernel named {name!r}")
    return kernel


def _arguments(launch: KernelLaunch, args: tuple[Any, ...], buffers: list[torch.Tensor]) -> tuple[list[Any], dict[str, Any]]:
    def value(argument: Any) -> Any:
        return materialize(argument, args, buffers) if isinstance(argument, TensorRef) else argument

    return [value(a) for a in launch.args], {name: value(v) for name, v in launch.kwargs.items()}

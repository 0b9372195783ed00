"""What runs inside the sandbox: import the candidate, call it on every trial's inputs, compile its kernels;
and, in a second sandbox once it has passed, time it (`time_candidate`).

This process is untrusted once the candidate's code has run, so it only *reports* raw facts (outputs,
inputs after the call, what the kernels left in the returned tensor, launch counts, torch ops seen, compile
errors) over the report channel, a pipe the evaluator opened before forking; the trusted evaluator compares
them with the reference, which never exists in this process. Nothing the sandbox writes to its directory is
ever read back.

Kernels are first compiled for the GPU target from the arguments of a no-op pass, then each trial calls
the entrypoint under the interpreter three times: with every kernel a no-op, for real under the torch-op
guard, and again to check determinism. Every call gets a freshly executed module (no state survives between calls) and freshly cloned inputs. The
report is sent after each phase, so a crash or timeout later still leaves what was learnt before it (for
compilation; correctness needs the finished report).
"""
from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from . import launches
from .interpreter_mode import switch_to_interpreter
from .offline_compile import compile_launch
from .sandbox import Limits, Outcome, ReportWriter, run_isolated
from .timing import clock_for, measure

CANDIDATE_FILE = "candidate.py"
Report = Callable[[dict[str, Any]], None]


def run_sandboxed(
    child: Callable[[Path, Report], None], limits: Limits, temp_root: str | None
) -> tuple[dict[str, Any] | None, Outcome]:
    """Runs `child(workdir, send)` in the sandbox in a fresh directory and returns the last report it sent
    (None if it died before sending one); the directory is removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="candidate-", dir=temp_root))
    try:
        outcome, messages = run_isolated(lambda writer: child(workdir, _sender(writer)), workdir, limits)
        report = None
        for message in reversed(messages):
            try:
                report = torch.load(io.BytesIO(message), weights_only=True)
                break
            except Exception:  # not a report the harness wrote: ignored
                continue
        return report if isinstance(report, dict) else None, outcome
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _sender(writer: ReportWriter) -> Report:
    def send(report: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(report, buffer)
        writer.send(buffer.getvalue())

    return send


def run_candidate(code: str, entrypoint: str, trial_inputs: list[tuple[Any, ...]], workdir: Path, send: Report) -> None:
    os.environ["TRITON_CACHE_DIR"] = str(workdir / "triton-cache")  # nothing shared with other candidates
    report: dict[str, Any] = {"imported": False, "error": None, "kernels": [], "trials": [], "finished": False}
    save = lambda: send(report)  # noqa: E731
    save()
    _forget_the_dataset()
    # Uninitialised memory reads as NaN: an output the kernel never writes cannot inherit earlier results.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    launches.install()

    source_path = workdir / CANDIDATE_FILE
    source_path.write_text(code)
    compiled = compile(code, str(source_path), "exec")
    try:
        _execute(compiled)
    except BaseException as error:  # the candidate's import may raise anything, SystemExit included
        report["error"] = _describe(error)
        save()
        return
    report["imported"] = True
    save()

    # Compile mode (how the runner imported Triton): a no-op pass records each kernel's launch arguments,
    # from which the kernels are compiled for the GPU target; then the interpreter runs the trials.
    _quiet_call(compiled, entrypoint, trial_inputs[0], noop=True)
    report["kernels"] = _compile_launched_kernels()
    save()
    switch_to_interpreter()
    for inputs in trial_inputs:
        noop_output = _quiet_call(compiled, entrypoint, inputs, noop=True)
        report["trials"].append(_run_trial(compiled, entrypoint, inputs, noop_output))
        save()
    report["finished"] = True
    save()


def time_candidate(
    code: str, entrypoint: str, inputs: tuple[Any, ...], device: str, warmup: int, trials: int, workdir: Path, send: Report
) -> None:
    """Time the entrypoint on one set of inputs on `device` ("cuda": compiled kernels; "cpu": the interpreter).

    The same inputs serve every call (the allow-list leaves no state that could cache a result between calls);
    the output of a call after the timed ones is reported so the evaluator can check that what was timed still
    computes the right thing (a candidate could branch on the device it runs on).
    """
    os.environ["TRITON_CACHE_DIR"] = str(workdir / "triton-cache")
    report: dict[str, Any] = {"error": None, "timing": None, "output": None}
    clock = clock_for(device)  # bound before the candidate's code runs
    _forget_the_dataset()
    if device == "cpu":
        switch_to_interpreter()
    source_path = workdir / CANDIDATE_FILE
    source_path.write_text(code)
    try:
        function = _load(compile(code, str(source_path), "exec"), entrypoint)
        args = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in inputs)
        timing = measure(lambda: function(*args), clock, warmup, trials)
        report["output"] = _as_tensor(function(*args))
        report["timing"] = {"median_s": timing.median_s, "spread_s": timing.spread_s, "trials": timing.trials}
    except BaseException as error:  # the candidate may raise anything, SystemExit included
        report["error"] = _describe(error)
    send(report)


def _run_trial(compiled: Any, entrypoint: str, inputs: tuple[Any, ...], noop_output: torch.Tensor | None) -> dict[str, Any]:
    trial: dict[str, Any] = {"error": None, "noop": noop_output}
    launches.RECORDER.launches = 0
    launches.RECORDER.written.clear()
    args = _clone(inputs)
    guard = launches.WrapperOpGuard()
    try:
        with guard, launches.RECORDER.watching_effects():
            result = _load(compiled, entrypoint)(*args)
        trial["output"] = _as_tensor(result)
    except BaseException as error:
        trial["error"] = _describe(error)
        return trial
    trial["kernel_effect"] = launches.RECORDER.left_in(result)
    trial["launches"] = launches.RECORDER.launches
    trial["torch_ops"] = guard.forbidden
    trial["inputs_after"] = [a for a in args if isinstance(a, torch.Tensor)]
    trial["again"] = _quiet_call(compiled, entrypoint, inputs)
    return trial


def _compile_launched_kernels() -> list[dict[str, Any]]:
    results = []
    for name, launch in launches.RECORDER.first_launches.items():
        try:
            compile_launch(launch)
            results.append({"name": name, "compiled": True, "error": None})
        except BaseException as error:
            results.append({"name": name, "compiled": False, "error": _describe(error)})
    return results


def _execute(compiled: Any) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "candidate", "__file__": compiled.co_filename}
    exec(compiled, namespace)
    return namespace


def _load(compiled: Any, entrypoint: str) -> Callable[..., Any]:
    """Execute the module afresh and return its entrypoint."""
    function = _execute(compiled).get(entrypoint)
    if not callable(function):
        raise NameError(f"the module defines no function named {entrypoint!r}")
    return function


def _quiet_call(compiled: Any, entrypoint: str, inputs: tuple[Any, ...], noop: bool = False) -> torch.Tensor | None:
    """A call whose failure is not reported: the guarded call reports errors, and no-op kernels may break anything."""
    launches.RECORDER.noop = noop
    try:
        return _as_tensor(_load(compiled, entrypoint)(*_clone(inputs)))
    except BaseException:
        return None
    finally:
        launches.RECORDER.noop = False


def _as_tensor(value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"the entrypoint returned {type(value).__name__}, not a tensor")
    return value.detach().cpu().clone()


def _clone(inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in inputs)


def _forget_the_dataset() -> None:
    """Make the reference unreachable by import: the candidate's inputs were already generated."""
    for name in [n for n in sys.modules if n == "kernels" or n.startswith("kernels.")]:
        if not name.startswith(("kernels.launches", "kernels.offline_compile", "kernels.candidate")):
            del sys.modules[name]
    repo_root = str(Path(__file__).resolve().parent.parent)
    sys.path[:] = [p for p in sys.path if p not in ("", ".", repo_root)]


def _describe(error: BaseException) -> str:
    lines = traceback.format_exception_only(type(error), error)
    return "".join(lines).strip()[-1500:]

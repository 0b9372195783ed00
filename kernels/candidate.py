"""What runs the candidate's host code, in a sandbox: trace its launches for every trial (`trace_candidate`),
and, once it has passed, time it (`time_candidate`).

This process is untrusted once the candidate's code has run: with arbitrary Python it could send anything on
its report channel (a pipe the evaluator opened before forking). So the tracing sandbox reports no outputs
and no verdicts, only what the entrypoint *asked* for (`trace.py`): the evaluator replays that in another
sandbox that runs none of the candidate's host code (`replay.py`), on the real inputs and on fresh ones drawn
after this process is gone. Every call gets a freshly executed module and freshly cloned inputs. Nothing the
sandbox writes to its directory is ever read back.
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


def trace_candidate(code: str, entrypoint: str, trial_inputs: list[tuple[Any, ...]], workdir: Path, send: Report) -> None:
    """Import the candidate and call its entrypoint once per trial with every launch recorded, not run."""
    report: dict[str, Any] = {"imported": False, "error": None, "trials": [], "finished": False}
    save = lambda: send(report)  # noqa: E731
    save()
    _forget_the_dataset()
    # Uninitialised memory reads as NaN: a buffer the kernels never write cannot inherit earlier results.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    launches.install()

    source_path = workdir / CANDIDATE_FILE
    source_path.write_text(code)
    compiled = compile(code, str(source_path), "exec")
    try:
        _execute(compiled)
    except BaseException as error:  # the candidate's import may raise anything, SystemExit included
        report["error"] = describe(error)
        save()
        return
    report["imported"] = True
    save()
    for inputs in trial_inputs:
        report["trials"].append(_trace_call(compiled, entrypoint, inputs))
        save()
    report["finished"] = True
    save()


def _trace_call(compiled: Any, entrypoint: str, inputs: tuple[Any, ...]) -> dict[str, Any]:
    args = clone_args(inputs)
    recorder = launches.RECORDER = launches.LaunchRecorder(args)
    guard = launches.WrapperOpGuard()
    try:
        with guard:
            result = _load(compiled, entrypoint)(*args)
        return {"error": None, "trace": recorder.trace(result), "torch_ops": guard.forbidden}
    except BaseException as error:  # the candidate may raise anything, SystemExit included
        return {"error": describe(error), "trace": None, "torch_ops": guard.forbidden}
    finally:
        launches.RECORDER = None


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
        report["error"] = describe(error)
    send(report)


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


def _as_tensor(value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"the entrypoint returned {type(value).__name__}, not a tensor")
    return value.detach().cpu().clone()


def clone_args(inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in inputs)


def _forget_the_dataset() -> None:
    """Make the reference unreachable by import: the candidate's inputs were already generated."""
    for name in [n for n in sys.modules if n == "kernels" or n.startswith("kernels.")]:
        if not name.startswith(("kernels.launches", "kernels.trace", "kernels.candidate")):
            del sys.modules[name]
    repo_root = str(Path(__file__).resolve().parent.parent)
    sys.path[:] = [p for p in sys.path if p not in ("", ".", repo_root)]


def describe(error: BaseException) -> str:
    lines = traceback.format_exception_only(type(error), error)
    return "".join(lines).strip()[-1500:]

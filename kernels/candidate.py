"""What runs the candidate's host code, in a sandbox: trace its launches for every call (`trace_candidate`):
one per trial, and one on the timed inputs when runtime is measured.

This process is untrusted once the candidate's code has run: with arbitrary Python it could send anything on
its report channel (a pipe the evaluator opened before forking). So the tracing sandbox reports no outputs
and no verdicts, only what the entrypoint *asked* for (`trace.py`): the evaluator replays that in another
sandbox that runs none of the candidate's host code (`replay.py`), on the real inputs and on fresh ones drawn
after this process is gone; the runtime reward times that replay too (`timed_replay.py`), never this process. Every call gets a freshly executed module and freshly cloned inputs. Nothing the
sandbox writes to its directory is ever read back.
"""
from __future__ import annotations

import io
import shutil
import sys
import tempfile
import tokenize
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from . import launches
from .sandbox import Limits, Outcome, ReportWriter, run_isolated
from .trace import copy_args

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


def write_source(workdir: Path, code: str) -> Path:
    """Writes the candidate's source where Triton reads each kernel's text from (`CANDIDATE_FILE`), as UTF-8, and
    checks that it reads back as the same text the way Triton reads it (linecache decodes a file by its encoding
    declaration: `code_ast.reread_differences`); raises otherwise, so nothing runs from a file that says otherwise."""
    path = workdir / CANDIDATE_FILE
    path.write_text(code, encoding="utf-8")
    with tokenize.open(path) as file:
        read_back = file.read()
    if read_back != code.replace("\r\n", "\n").replace("\r", "\n"):
        raise ValueError(f"{CANDIDATE_FILE} does not read back as the text that was written")
    return path


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

    source_path = write_source(workdir, code)
    compiled = compile(code, str(source_path), "exec")
    try:
        _execute(compiled)
    except BaseException as error:  # the candidate's import may raise anything, SystemExit included
        report["error"] = describe(error)
        save()
        return
    report["imported"] = True
    save()
    for index, inputs in enumerate(trial_inputs):
        report["trials"].append(_trace_call(compiled, entrypoint, inputs))
        # Marked finished with the last call, so a large trace (the GPU's timed call) is sent only once.
        report["finished"] = index == len(trial_inputs) - 1
        save()


def _trace_call(compiled: Any, entrypoint: str, inputs: tuple[Any, ...]) -> dict[str, Any]:
    args = copy_args(inputs)
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

"""What runs inside the sandbox: import the candidate, call it on every trial's inputs, compile its kernels.

This process is untrusted once the candidate's code has run, so it only *reports* raw facts (outputs,
inputs after the call, launch counts, torch ops seen, compile errors) to `report.pt`; the trusted evaluator
compares them with the reference, which never exists in this process.

Every call gets a freshly executed module (no state survives between calls) and freshly cloned inputs. The
report is saved after each phase, so a crash or timeout later still leaves what was learnt before it.
"""
from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from . import launches
from .offline_compile import compile_launch

REPORT_NAME = "report.pt"
CANDIDATE_FILE = "candidate.py"


def run_candidate(code: str, entrypoint: str, trial_inputs: list[tuple[Any, ...]], workdir: Path) -> None:
    report: dict[str, Any] = {"imported": False, "error": None, "kernels": [], "trials": []}
    save = lambda: torch.save(report, workdir / REPORT_NAME)  # noqa: E731
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
        _load(compiled, entrypoint)
    except BaseException as error:  # the candidate's import may raise anything, SystemExit included
        report["error"] = _describe(error)
        save()
        return
    report["imported"] = True
    save()

    for trial, inputs in enumerate(trial_inputs):
        report["trials"].append(_run_trial(compiled, entrypoint, inputs))
        if trial == 0:
            report["kernels"] = _compile_launched_kernels()
        save()


def _run_trial(compiled: Any, entrypoint: str, inputs: tuple[Any, ...]) -> dict[str, Any]:
    trial: dict[str, Any] = {"error": None}
    launches.RECORDER.launches = 0
    args = _clone(inputs)
    guard = launches.WrapperOpGuard()
    try:
        with guard:
            result = _load(compiled, entrypoint)(*args)
        trial["output"] = _as_tensor(result)
    except BaseException as error:
        trial["error"] = _describe(error)
        return trial
    trial["launches"] = launches.RECORDER.launches
    trial["torch_ops"] = guard.forbidden
    trial["inputs_after"] = [a for a in args if isinstance(a, torch.Tensor)]
    trial["again"] = _quiet_call(compiled, entrypoint, inputs)
    launches.RECORDER.noop = True
    try:
        trial["noop"] = _quiet_call(compiled, entrypoint, inputs)
    finally:
        launches.RECORDER.noop = False
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


def _load(compiled: Any, entrypoint: str) -> Callable[..., Any]:
    """Execute the module afresh and return its entrypoint."""
    namespace: dict[str, Any] = {"__name__": "candidate", "__file__": compiled.co_filename}
    exec(compiled, namespace)
    function = namespace.get(entrypoint)
    if not callable(function):
        raise NameError(f"the module defines no function named {entrypoint!r}")
    return function


def _quiet_call(compiled: Any, entrypoint: str, inputs: tuple[Any, ...]) -> torch.Tensor | None:
    """A repeat call whose failure is not the candidate's fault to report (no-op kernels may break shapes)."""
    try:
        return _as_tensor(_load(compiled, entrypoint)(*_clone(inputs)))
    except BaseException:
        return None


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

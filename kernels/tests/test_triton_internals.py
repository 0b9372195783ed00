"""The version seam (`kernels/triton_internals.py`) against the installed Triton and against Triton 3.6.

CI has one torch and one Triton (the pinned ones). Triton 3.6, the release a GPU machine may bring, is
checked without a second torch: Triton's wheel does not depend on torch's version, so an unpacked 3.6 wheel
put first on PYTHONPATH runs the real runner (with the pinned torch) over every data-set solution. Point
`KERNELS_TRITON_36` at that unpacked wheel (scripts/setup.sh makes `.cache/triton-3.6`); without it those
tests are skipped, saying so.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernels import triton_internals
from kernels.triton_internals import (
    REQUIRED_SIGNATURES, Parameters, UnsupportedVersion, check_version, installed_signatures, signature_mismatches,
)

from .runner_process import REPO_ROOT

TRITON_36 = Path(os.environ.get("KERNELS_TRITON_36", REPO_ROOT / ".cache" / "triton-3.6"))
needs_triton_36 = pytest.mark.skipif(
    not (TRITON_36 / "triton" / "__init__.py").is_file(),
    reason=f"no unpacked Triton 3.6 wheel at {TRITON_36} (set KERNELS_TRITON_36 or run scripts/setup.sh)",
)


@pytest.mark.parametrize("version", ["3.6.0", "3.7.1", "3.9.0", "3.9.0.dev20260101"])
def test_triton_releases_in_the_tested_range_are_accepted(version: str) -> None:
    check_version("triton", version, triton_internals.TESTED_TRITON)


@pytest.mark.parametrize("version", ["3.5.1", "3.10.0", "4.0.0", "2.9.0"])
def test_triton_releases_outside_the_range_are_refused_by_name(version: str) -> None:
    with pytest.raises(UnsupportedVersion, match=rf"triton {version} is outside .*3\.6 through 3\.9"):
        check_version("triton", version, triton_internals.TESTED_TRITON)


def test_torch_versions_are_gated_too() -> None:
    check_version("torch", "2.11.0+cu130", triton_internals.TESTED_TORCH)
    check_version("torch", "2.15.0+cu132", triton_internals.TESTED_TORCH)
    with pytest.raises(UnsupportedVersion, match=r"torch 2\.10\.0\+cu128 is outside"):
        check_version("torch", "2.10.0+cu128", triton_internals.TESTED_TORCH)


def test_the_installed_internals_have_the_assumed_signatures() -> None:
    assert signature_mismatches(installed_signatures()) == []


def test_a_moved_internal_is_reported_by_name() -> None:
    found: dict[str, Parameters | None] = dict(REQUIRED_SIGNATURES)
    found["triton.runtime.jit:JITFunction._pack_args"] = [("self", "positional"), ("backend", "positional")]
    found["triton.runtime.jit:create_function_from_signature"] = None
    assert signature_mismatches(found) == [
        "triton.runtime.jit:create_function_from_signature is missing",
        "triton.runtime.jit:JITFunction._pack_args takes [('self', 'positional'), ('backend', 'positional')], "
        "the runner assumes " + str(REQUIRED_SIGNATURES["triton.runtime.jit:JITFunction._pack_args"]),
    ]


def test_only_the_leading_parameters_of_a_patched_builder_method_are_compared() -> None:
    name = "triton.runtime.interpreter:InterpreterBuilder.create_masked_load"
    leading = REQUIRED_SIGNATURES[name][:-1]
    found: dict[str, Parameters | None] = {**REQUIRED_SIGNATURES, name: leading + [("cache_modifier", "positional")]}
    assert signature_mismatches(found) == []
    found[name] = [("self", "positional"), ("pointers", "positional"), ("mask", "positional"), ("other", "positional")]
    assert signature_mismatches(found) == [f"{name} takes {found[name]}, the runner assumes {REQUIRED_SIGNATURES[name]}"]


@needs_triton_36
def test_triton_36_sources_have_the_assumed_signatures() -> None:
    """Read from 3.6's files with `ast` (importing a second Triton into this process is not possible)."""
    found = {name: _source_parameters(TRITON_36, name) for name in REQUIRED_SIGNATURES}
    assert signature_mismatches(found) == []


@needs_triton_36
def test_every_solution_scores_one_on_triton_36() -> None:
    """The whole runner (allow-list, offline compile for sm_90, interpreter trials) on Triton 3.6."""
    script = (
        "import sys, triton\n"
        "from kernels.dataset import ALL_PROBLEMS\n"
        "from kernels.tests.runner_process import RunnerProcess, scores, tagged\n"
        "assert triton.__version__.startswith('3.6.'), triton.__version__\n"
        "runner = RunnerProcess('--time-limit', '60')\n"
        "names = sorted(ALL_PROBLEMS)\n"
        "results = runner.evaluate_many([(n, tagged(ALL_PROBLEMS[n].solution())) for n in names])\n"
        "runner.close()\n"
        "for name, result in zip(names, results):\n"
        "    got = {k: v for k, v in scores(result).items() if k != 'runtime'}\n"
        "    if got != {'formatting': 1.0, 'compilation': 1.0, 'correctness': 1.0} or result['hacks']:\n"
        "        print(name, result['rewards']['correctness']['reason'][:300])\n"
        "print('checked', len(names))\n"
    )
    environment = {**os.environ, "PYTHONPATH": f"{TRITON_36}{os.pathsep}{REPO_ROOT}"}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines() == [f"checked {len(_problem_names())}"], done.stdout


def _problem_names() -> list[str]:
    from kernels.dataset import ALL_PROBLEMS

    return sorted(ALL_PROBLEMS)


def _source_parameters(root: Path, name: str) -> Parameters | None:
    module_name, qualified = name.split(":")
    tree = ast.parse((root / (module_name.replace(".", "/") + ".py")).read_text())
    scope: list[ast.stmt] = tree.body
    node: ast.AST | None = None
    for part in qualified.split("."):
        node = next((n for n in scope if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == part), None)
        if node is None:
            return None
        scope = node.body
    if not isinstance(node, ast.FunctionDef):
        return None
    arguments = node.args
    parameters = [(a.arg, "positional") for a in [*arguments.posonlyargs, *arguments.args]]
    if arguments.vararg:
        parameters.append((arguments.vararg.arg, "*"))
    parameters += [(a.arg, "keyword") for a in arguments.kwonlyargs]
    if arguments.kwarg:
        parameters.append((arguments.kwarg.arg, "**"))
    return parameters

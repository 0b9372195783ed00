"""Switches an already-imported Triton from compiling to interpreting (TRITON_INTERPRET=1 semantics).

A process holds one flavour of `triton.language`: under TRITON_INTERPRET=1 its @jit helpers (tl.sum, tl.max,
tl.rand...) become InterpretedFunctions that the real compiler cannot lower, and without it the interpreter
cannot call them. The runner therefore imports Triton in compile mode; each sandbox compiles first, then
calls this to re-execute the language modules with the interpreter on. The sandbox is a throwaway fork, so
mutating modules here touches no other candidate.
"""
from __future__ import annotations

import importlib

import triton.language
import triton.language.random
import triton.language.standard

from .triton_internals import round_dot_inputs_to_tf32, set_interpreter


def switch_to_interpreter() -> None:
    set_interpreter(True)
    # Order matters: the package re-exports names from its submodules, so they are reloaded first.
    for module in (triton.language.standard, triton.language.random, triton.language):
        importlib.reload(module)
    # Judged here, a dot must be as precise as it will be on the GPU, not more.
    round_dot_inputs_to_tf32()

"""The grammar allow-list: what a candidate module may contain, checked on its syntax tree before any of it runs.

Outside `@triton.jit` bodies a candidate only moves data and books launches, so the grammar there is closed:
module level holds imports of torch, triton, triton.language and math, `@triton.jit` kernels, literal constants
and plain function definitions. A wrapper function reads shapes, strides, numel, dtype and device of tensors,
does arithmetic and comparisons on those values (never on tensors), allocates (`torch.empty*`/`zeros*`/`full*`),
re-views (`view`, `reshape`, `contiguous`), calls `triton.cdiv`, `triton.next_power_of_2`, a few builtins and
`math` functions and its own helper functions, launches kernels as `kernel[grid](...)` with `grid` a tuple of
such values or `lambda meta: (...)`, and returns a tensor it allocated. Every expression is typed while it is
checked (a value read from tensor metadata, a tensor from the inputs, a tensor the wrapper allocated), so a
tensor can never reach arithmetic, a subscript, a builtin or a branch on the host.

Kernel bodies are the Triton language: names are parameters, locals, module constants, other kernels, a few
builtins and what triton.language (and math) define; attributes of values are those of Triton's tensor and
dtype classes. Nothing starting with an underscore is reachable anywhere.

Anything not listed is rejected with its node and line: a new trick needs a new *allowed* form to get in, not
a missing rule to slip through.
"""
from __future__ import annotations

import ast
from typing import Any

import torch

from ..violation import Violation
from .kernel_rules import KernelChecker
from .module_rules import module_statement
from .vocabulary import INPUT, META, OUTPUT, TENSOR, Module, NotAllowed
from .wrapper_rules import WrapperChecker

__all__ = ["INPUT", "META", "argument_kinds", "check"]


def check(tree: ast.Module, entrypoint: str, argument_kinds: list[str]) -> list[Violation]:
    """Every departure from the allow-list (the first one per top-level statement and per function), or none.

    `argument_kinds` says which of the entrypoint's arguments are tensors (INPUT) and which plain values (META).
    """
    violations: list[Violation] = []
    module = Module({}, set(), {}, {})
    for statement in tree.body:
        try:
            module_statement(statement, module, first=statement is tree.body[0])
        except NotAllowed as error:
            violations.append(error.violation())
    for kernel in module.kernels.values():
        try:
            KernelChecker(module, kernel).check()
        except NotAllowed as error:
            violations.append(error.violation())
    wrappers = WrapperChecker(module)
    checked: set[str] = set()
    if entrypoint in module.functions:
        try:
            function = module.functions[entrypoint]
            kinds = argument_kinds + [INPUT] * (len(function.args.args) - len(argument_kinds))
            if wrappers.returns(function, kinds[: len(function.args.args)], function) != OUTPUT:
                raise NotAllowed(function, "the entrypoint must return a tensor it allocated")
        except NotAllowed as error:
            violations.append(error.violation())
        checked |= wrappers.checked
    for name, function in module.functions.items():
        if name not in checked:  # never called from the entrypoint: checked with every argument a tensor
            try:
                wrappers.returns(function, [TENSOR] * len(function.args.args), function)
            except NotAllowed as error:
                violations.append(error.violation())
    return violations


def argument_kinds(arguments: tuple[Any, ...]) -> list[str]:
    return [INPUT if isinstance(a, torch.Tensor) else META for a in arguments]

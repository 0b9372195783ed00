"""The part of a candidate module the replay sandbox executes: its `@triton.jit` kernels and what they need.

The replay (`replay.py`) must get the candidate's kernels without running the candidate's host code, so the
evaluator cuts the module down on its syntax tree to statements whose execution runs nothing of the
candidate's: imports of torch, triton, triton.language and math; names bound to literals (or
`constexpr(literal)`); and function definitions decorated with exactly `triton.jit` (literal options), with
literal defaults and name-only annotations. Everything else (the wrapper functions, anything stranger) is
left out. This is not the allow-list: it is a second, smaller filter that does not trust it. The kept nodes
keep their line numbers; the replay compiles them under the path of a copy of the candidate's source, so
Triton reads each kernel's source from that file as usual.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

IMPORTABLE = {"torch", "triton", "triton.language", "math"}
IMPORTABLE_FROM = {"__future__", "triton", "triton.language"}


def kernel_module(tree: ast.Module) -> ast.Module:
    """The cut-down module (safe to execute: see the module docstring)."""
    kept: list[ast.stmt] = []
    jit = _JitNames(modules=set(), functions=set())
    for statement in tree.body:
        if isinstance(statement, ast.Import) and all(alias.name in IMPORTABLE and _public(alias.asname) for alias in statement.names):
            kept.append(statement)
            for alias in statement.names:
                if alias.name == "triton" or (alias.asname is None and alias.name.startswith("triton.")):
                    jit.modules.add(alias.asname or "triton")
        elif (isinstance(statement, ast.ImportFrom) and statement.level == 0 and statement.module in IMPORTABLE_FROM
              and all(_public(alias.name) and _public(alias.asname) for alias in statement.names)):
            kept.append(statement)
            if statement.module == "triton":
                jit.functions.update(alias.asname or alias.name for alias in statement.names if alias.name == "jit")
        elif isinstance(statement, ast.Assign) and _is_constant_binding(statement):
            kept.append(statement)
        elif isinstance(statement, ast.FunctionDef) and _is_plain_kernel(statement, jit):
            kept.append(statement)
    return ast.Module(body=kept, type_ignores=[])


@dataclass(frozen=True)
class _JitNames:
    modules: set[str]  # local names bound to the `triton` module
    functions: set[str]  # local names bound to `triton.jit` itself


def _public(name: str | None) -> bool:
    return name is None or not name.startswith("_")


def _is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return isinstance(node, ast.Constant)


def _is_constant_binding(statement: ast.Assign) -> bool:
    if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name) or not _public(statement.targets[0].id):
        return False
    value = statement.value
    if isinstance(value, ast.Call):  # `tl.constexpr(literal)`: an attribute of an imported module, called on a literal
        return (isinstance(value.func, ast.Attribute) and value.func.attr == "constexpr" and isinstance(value.func.value, ast.Name)
                and len(value.args) == 1 and not value.keywords and _is_literal(value.args[0]))
    return _is_literal(value)


def _is_plain_kernel(function: ast.FunctionDef, jit: _JitNames) -> bool:
    if len(function.decorator_list) != 1 or not _is_jit(function.decorator_list[0], jit):
        return False
    arguments = function.args
    parameters = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    defaults = [*arguments.defaults, *(d for d in arguments.kw_defaults if d is not None)]
    annotations = [p.annotation for p in parameters if p.annotation is not None]
    if function.returns is not None:
        annotations.append(function.returns)
    return (arguments.vararg is None and arguments.kwarg is None and all(_is_literal(d) for d in defaults)
            and all(_is_name_annotation(a) for a in annotations))


def _is_jit(decorator: ast.expr, jit: _JitNames) -> bool:
    if isinstance(decorator, ast.Call):
        return (not decorator.args and all(k.arg is not None and _is_literal_option(k.value) for k in decorator.keywords)
                and _is_jit(decorator.func, jit))
    if isinstance(decorator, ast.Attribute):
        return decorator.attr == "jit" and isinstance(decorator.value, ast.Name) and decorator.value.id in jit.modules
    return isinstance(decorator, ast.Name) and decorator.id in jit.functions


def _is_literal_option(node: ast.expr) -> bool:
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_is_literal(element) for element in node.elts)
    return _is_literal(node)


def _is_name_annotation(node: ast.expr) -> bool:
    """`x`, `tl.constexpr`, or a string: evaluating it reads names, calls nothing."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)

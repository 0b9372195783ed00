"""Kernel-body rules: a `@triton.jit` body uses Triton-language names and attributes only."""
from __future__ import annotations

import ast
import importlib
from types import ModuleType
from typing import Any

import triton.language as tl

from ..code_ast import resolve_name
from .module_rules import assigned_names, signature
from .vocabulary import KERNEL_BUILTINS, KERNEL_MODULES, KERNEL_VALUE_ATTRIBUTES, Module, NotAllowed


class KernelChecker:
    """A `@triton.jit` body: Triton-language names and attributes only."""

    FORBIDDEN = (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.With, ast.AsyncWith, ast.Try,
                 ast.Raise, ast.Global, ast.Nonlocal, ast.Import, ast.ImportFrom, ast.Delete, ast.Await, ast.Yield,
                 ast.YieldFrom, ast.NamedExpr, ast.JoinedStr, ast.GeneratorExp, ast.ListComp, ast.SetComp,
                 ast.DictComp, ast.Starred, ast.Match, ast.Dict, ast.Set, ast.AsyncFor)

    def __init__(self, module: Module, kernel: ast.FunctionDef) -> None:
        self.module = module
        self.kernel = kernel

    def check(self) -> None:
        parameters = set(signature(self.kernel, self.module))
        local = assigned_names(self.kernel.body)
        for name in local & (self.module.names | KERNEL_BUILTINS):
            raise NotAllowed(self.kernel, f"kernel {self.kernel.name} rebinds the module-level name {name}")
        known = parameters | local | self.module.constants | set(self.module.kernels)
        for node in ast.walk(ast.Module(body=self.kernel.body, type_ignores=[])):
            if isinstance(node, self.FORBIDDEN):
                raise NotAllowed(node, "not part of the Triton language")
            if isinstance(node, (ast.Attribute, ast.Subscript)) and not isinstance(node.ctx, ast.Load):
                raise NotAllowed(node, "a kernel writes memory with tl.store, not by assigning attributes or items")
            if isinstance(node, ast.keyword) and (node.arg is None or node.arg.startswith("_")):
                raise NotAllowed(self.kernel, f"keyword {node.arg}: ** and names starting with _ are not allowed")
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                self._name(node, known)
            if isinstance(node, ast.Attribute):
                self._attribute(node)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"float", "int"}:
                if not all(isinstance(arg, ast.Constant) for arg in node.args):
                    raise NotAllowed(node, f"{node.func.id}() takes a literal in a kernel (use .to() to convert values)")

    def _name(self, node: ast.Name, known: set[str]) -> None:
        if node.id in known or node.id in KERNEL_BUILTINS:
            return
        if node.id in self.module.aliases and self.module.aliases[node.id] != "torch":
            return
        raise NotAllowed(node, f"{node.id} is not a parameter, a local, a module constant, a kernel or triton.language")

    def _attribute(self, node: ast.Attribute) -> None:
        if node.attr.startswith("_"):
            raise NotAllowed(node, f".{node.attr}: names starting with _ are not allowed")
        dotted = resolve_name(node, self.module.aliases)
        if dotted is None:  # an attribute of a value, not of a module
            if node.attr not in KERNEL_VALUE_ATTRIBUTES:
                raise NotAllowed(node, f".{node.attr} is not an attribute of Triton's tensor, pointer or dtype types")
            return
        value: Any = None
        for index, part in enumerate(dotted.split(".")):
            value = importlib.import_module(part) if index == 0 else getattr(value, part, None)
            if value is None:
                return  # not defined: the compiler reports it (partial credit for compilation)
            path = ".".join(dotted.split(".")[: index + 1])
            if isinstance(value, ModuleType):
                if path not in KERNEL_MODULES and value.__name__ not in KERNEL_MODULES:
                    raise NotAllowed(node, f"{path} is not a module a kernel may use")
            elif index < len(dotted.split(".")) - 1:
                raise NotAllowed(node, f"{dotted}: attributes of {path} are not part of the Triton language")
            elif not _defined_by_triton_or_math(value):
                raise NotAllowed(node, f"{dotted} is not defined by triton.language or math")


def _defined_by_triton_or_math(value: Any) -> bool:
    if isinstance(value, (tl.dtype, tl.constexpr, int, float, bool)) and not isinstance(value, type):
        return True
    module = getattr(value, "__module__", None) or ""
    return module == "math" or module.startswith(("triton.language", "triton.runtime.jit"))

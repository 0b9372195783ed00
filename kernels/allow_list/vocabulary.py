"""The allow-list's vocabulary: what may be imported, called and read, the kinds wrapper values are typed
with, and the two shapes every rule shares (a rejection naming its node, the module's top-level names)."""
from __future__ import annotations

import ast
from dataclasses import dataclass

import torch
import triton.language as tl

from ..violation import Violation

ALLOWED_IMPORTS = {"torch", "triton", "triton.language", "math"}
ALLOWED_FROM_IMPORTS = {("__future__", "annotations"), ("triton", "language")}

# Value kinds in wrapper code. META: a Python value built from literals and tensor metadata (ints, floats,
# tuples, dtypes, devices). INPUT / OUTPUT: a tensor from the arguments / one the wrapper allocated (or a view
# of either). TENSOR: a name that holds either. GRID: a `lambda meta: ...` grid. META_DICT: that lambda's
# parameter (only `meta["NAME"]` may be read from it).
META, INPUT, OUTPUT, TENSOR, GRID, META_DICT = "meta", "input tensor", "allocated tensor", "tensor", "grid", "meta dict"
TENSOR_KINDS = {INPUT, OUTPUT, TENSOR}

WRAPPER_BUILTINS = {"min", "max", "len", "range", "int", "float", "bool", "abs", "tuple"}
KERNEL_BUILTINS = {"min", "max", "range", "float", "int", "abs", "len", "print"}
RAISABLE = {"ValueError", "TypeError", "RuntimeError", "NotImplementedError", "AssertionError"}

TORCH_DTYPES = {f"torch.{name}" for name in dir(torch) if isinstance(getattr(torch, name), torch.dtype)}
ALLOCATORS = {f"torch.{name}" for name in ("empty", "zeros", "full", "empty_like", "zeros_like", "full_like", "empty_strided")}
ALLOCATOR_KEYWORDS = {"dtype", "device"}
META_FUNCTIONS = {"triton.cdiv", "triton.next_power_of_2"} | {
    f"math.{name}" for name in ("ceil", "floor", "log2", "sqrt", "prod", "gcd", "isqrt", "exp", "log", "tanh", "erf")
}
META_CONSTANTS = TORCH_DTYPES | {"math.pi", "math.e", "math.inf"}
ANNOTATION_TYPES = {"torch.Tensor", "torch.dtype", "torch.device", "triton.language.constexpr"}
ANNOTATION_BUILTINS = {"int", "float", "bool", "str", "tuple", "list"}

# Tensor metadata and views: nothing here reads or computes a value.
TENSOR_ATTRIBUTES = {"shape", "dtype", "device", "ndim"}
TENSOR_META_METHODS = {"stride", "size", "numel", "dim", "is_contiguous", "element_size"}
TENSOR_VIEW_METHODS = {"contiguous", "view", "reshape"}

KERNEL_MODULES = {"triton", "triton.language", "triton.language.math", "triton.language.extra", "triton.language.extra.cuda",
                  "triton.language.extra.libdevice", "math"}
# Attributes a kernel may read from its values (tensors, pointers, dtypes, constexprs): the public class-level
# names of Triton's own types, plus the instance fields they document.
KERNEL_VALUE_ATTRIBUTES = {
    name for cls in (tl.tensor, tl.dtype, tl.pointer_type, tl.block_type, tl.constexpr) for name in dir(cls) if not name.startswith("_")
} | {"dtype", "shape", "type", "numel", "element_ty", "value"}


class NotAllowed(Exception):
    def __init__(self, node: ast.AST, why: str) -> None:
        super().__init__(why)
        self.node = node
        self.why = why

    def violation(self) -> Violation:
        line = getattr(self.node, "lineno", "?")
        snippet = ast.unparse(self.node).splitlines()[0][:80] if isinstance(self.node, (ast.expr, ast.stmt)) else ""
        return Violation("not_allowed", f"line {line}: {type(self.node).__name__} `{snippet}`: {self.why}")


@dataclass
class Module:
    aliases: dict[str, str]
    constants: set[str]
    kernels: dict[str, ast.FunctionDef]
    functions: dict[str, ast.FunctionDef]

    @property
    def names(self) -> set[str]:
        return set(self.aliases) | self.constants | set(self.kernels) | set(self.functions)

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
import builtins
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
import triton.language as tl

from .code_ast import resolve_name
from .violation import Violation

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


def check(tree: ast.Module, entrypoint: str, argument_kinds: list[str]) -> list[Violation]:
    """Every departure from the allow-list (the first one per top-level statement and per function), or none.

    `argument_kinds` says which of the entrypoint's arguments are tensors (INPUT) and which plain values (META).
    """
    violations: list[Violation] = []
    module = Module({}, set(), {}, {})
    for statement in tree.body:
        try:
            _module_statement(statement, module, first=statement is tree.body[0])
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


def _module_statement(statement: ast.stmt, module: Module, first: bool) -> None:
    if isinstance(statement, ast.Import):
        for alias in statement.names:
            if alias.name not in ALLOWED_IMPORTS:
                raise NotAllowed(statement, f"import of {alias.name}: only {', '.join(sorted(ALLOWED_IMPORTS))} may be imported")
            name, target = (alias.asname, alias.name) if alias.asname else (alias.name.split(".")[0],) * 2
            if module.aliases.get(name) != target:  # `import triton` then `import triton.language` bind one name
                _bind(module, statement, name)
                module.aliases[name] = target
    elif isinstance(statement, ast.ImportFrom):
        for alias in statement.names:
            if statement.level or (statement.module, alias.name) not in ALLOWED_FROM_IMPORTS:
                raise NotAllowed(statement, "only `from triton import language` and `from __future__ import annotations`")
            if statement.module != "__future__":
                _bind(module, statement, alias.asname or alias.name)
                module.aliases[alias.asname or alias.name] = f"{statement.module}.{alias.name}"
    elif isinstance(statement, ast.FunctionDef):
        _bind(module, statement, statement.name)
        if not statement.decorator_list:
            module.functions[statement.name] = statement
        elif len(statement.decorator_list) == 1 and _is_jit(statement.decorator_list[0], module):
            module.kernels[statement.name] = statement
        else:
            raise NotAllowed(statement, "a function is either a plain definition or decorated with @triton.jit alone")
    elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        if len(targets) != 1 or not isinstance(targets[0], ast.Name) or statement.value is None:
            raise NotAllowed(statement, "a module-level assignment binds one name to a literal")
        if isinstance(statement, ast.AnnAssign):
            _annotation(statement.annotation, module)
        if not (_is_literal(statement.value) or _is_constexpr_literal(statement.value, module)):
            raise NotAllowed(statement, "a module-level constant must be a literal (or tl.constexpr(literal))")
        _bind(module, statement, targets[0].id)
        module.constants.add(targets[0].id)
    elif isinstance(statement, ast.Expr) and first and isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str):
        pass  # the module docstring
    else:
        raise NotAllowed(statement, "module level holds only imports, kernels, functions and literal constants")


def _bind(module: Module, node: ast.AST, name: str) -> None:
    if name in module.names or name.startswith("__"):
        raise NotAllowed(node, f"{name} is bound twice or is reserved")
    if name in vars(builtins):
        raise NotAllowed(node, f"{name} would shadow a builtin")


def _is_jit(decorator: ast.expr, module: Module) -> bool:
    if isinstance(decorator, ast.Call):
        return (resolve_name(decorator.func, module.aliases) == "triton.jit" and not decorator.args
                and all(kw.arg is not None and _is_literal(kw.value) for kw in decorator.keywords))
    return resolve_name(decorator, module.aliases) == "triton.jit"


def _is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float))
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_is_literal(element) for element in node.elts)
    return False


def _is_constexpr_literal(node: ast.expr, module: Module) -> bool:
    return (isinstance(node, ast.Call) and resolve_name(node.func, module.aliases) == "triton.language.constexpr"
            and len(node.args) == 1 and not node.keywords and _is_literal(node.args[0]))


def _annotation(node: ast.expr | None, module: Module) -> None:
    """Annotations are evaluated when a function is defined: only type names are allowed in them."""
    if node is None or (isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, str))):
        return
    if isinstance(node, ast.Name) and node.id in ANNOTATION_BUILTINS:
        return
    if isinstance(node, ast.Attribute) and resolve_name(node, module.aliases) in ANNOTATION_TYPES:
        return
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in ANNOTATION_BUILTINS:
        for element in node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]:
            _annotation(element, module)
        return
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        _annotation(node.left, module)
        _annotation(node.right, module)
        return
    raise NotAllowed(node, "an annotation names a type (int, float, torch.Tensor, tl.constexpr, ...)")


def _signature(function: ast.FunctionDef, module: Module) -> list[str]:
    arguments = function.args
    if arguments.vararg or arguments.kwarg or arguments.posonlyargs or arguments.kwonlyargs:
        raise NotAllowed(function, "parameters are plain positional names (no *args, **kwargs, / or keyword-only)")
    for default in arguments.defaults:
        if not _is_literal(default):
            raise NotAllowed(default, "a default value must be a literal")
    for argument in arguments.args:
        _annotation(argument.annotation, module)
        if argument.arg.startswith("_") and argument.arg != "_":
            raise NotAllowed(function, f"parameter {argument.arg}: names starting with _ are reserved")
        if argument.arg in module.names or argument.arg in vars(builtins):
            raise NotAllowed(function, f"parameter {argument.arg} shadows a module-level or builtin name")
    _annotation(function.returns, module)
    return [argument.arg for argument in arguments.args]


def _assigned_names(body: list[ast.stmt]) -> set[str]:
    names = set()
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                names.add(node.id)
    return names


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
        parameters = set(_signature(self.kernel, self.module))
        local = _assigned_names(self.kernel.body)
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


class WrapperChecker:
    """Plain functions: typed, closed expression grammar (see the module docstring)."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.checked: set[str] = set()
        self.active: list[str] = []
        self.memo: dict[tuple[str, tuple[str, ...]], str] = {}

    def returns(self, function: ast.FunctionDef, kinds: list[str], at: ast.AST) -> str:
        key = (function.name, tuple(kinds))
        if key in self.memo:
            return self.memo[key]
        if function.name in self.active:
            raise NotAllowed(at, f"{function.name} is called recursively")
        self.active.append(function.name)
        self.checked.add(function.name)
        try:
            parameters = _signature(function, self.module)
            if len(kinds) != len(parameters):
                raise NotAllowed(at, f"{function.name} takes {len(parameters)} arguments, called with {len(kinds)}")
            local = _assigned_names(function.body)
            for name in local & (self.module.names | WRAPPER_BUILTINS | set(vars(builtins))):
                raise NotAllowed(function, f"{function.name} rebinds {name}, a module-level or builtin name")
            scope = Scope(self, dict(zip(parameters, kinds)), local)
            for _ in range(2 * len(local) + 2):  # a name's kind widens at most twice, so this settles
                before = dict(scope.kinds)
                scope.returned = set()
                scope.body(function.body)
                if scope.kinds == before:
                    break
            result = _join(scope.returned) if scope.returned else META
        finally:
            self.active.pop()
        self.memo[key] = result
        return result


def _join(kinds: set[str]) -> str:
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds <= TENSOR_KINDS:
        return TENSOR
    raise NotAllowed(ast.Pass(), f"one name holds values of different kinds: {', '.join(sorted(kinds))}")


class Scope:
    def __init__(self, checker: WrapperChecker, kinds: dict[str, str], local: set[str]) -> None:
        self.checker = checker
        self.module = checker.module
        self.kinds = kinds
        self.local = local
        self.returned: set[str] = set()

    # statements ------------------------------------------------------------------------------------------
    def body(self, statements: list[ast.stmt]) -> None:
        for statement in statements:
            self.statement(statement)

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Assign):
            kind = self.value(node.value, allow_grid=True)
            for target in node.targets:
                self.assign(target, kind, node.value)
        elif isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name):
            _annotation(node.annotation, self.module)
            self.assign(node.target, self.value(node.value, allow_grid=True), node.value)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            self.meta(node.target)
            self.meta(node.value)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and self.is_launch(node.value):
            self.launch(node.value)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            pass  # a docstring
        elif isinstance(node, ast.Return):
            kind = META if node.value is None else self.value(node.value)
            if kind in (GRID, META_DICT):
                raise NotAllowed(node, "only tensors and plain values are returned")
            self.returned.add(kind)
        elif isinstance(node, ast.If):
            self.meta(node.test)
            self.body(node.body)
            self.body(node.orelse)
        elif isinstance(node, ast.For) and not node.orelse and isinstance(node.target, ast.Name):
            if not (isinstance(node.iter, ast.Call) and isinstance(node.iter.func, ast.Name) and node.iter.func.id == "range"):
                raise NotAllowed(node, "a loop runs over range(...)")
            self.meta(node.iter)
            self.assign(node.target, META, node)
            self.body(node.body)
        elif isinstance(node, ast.Assert):
            self.meta(node.test)
            if node.msg is not None and not isinstance(node.msg, ast.Constant):
                raise NotAllowed(node, "an assertion message is a literal")
        elif isinstance(node, ast.Raise) and node.cause is None and isinstance(node.exc, ast.Call):
            call = node.exc
            if not (isinstance(call.func, ast.Name) and call.func.id in RAISABLE and not call.keywords
                    and all(isinstance(arg, ast.Constant) for arg in call.args)):
                raise NotAllowed(node, f"raise takes one of {', '.join(sorted(RAISABLE))} with a literal message")
        elif isinstance(node, ast.Pass):
            pass
        else:
            raise NotAllowed(node, "a wrapper only assigns, branches, loops over range, launches kernels and returns")

    def assign(self, target: ast.expr, kind: str, value: ast.expr | ast.stmt) -> None:
        if isinstance(target, ast.Name):
            if target.id.startswith("__"):
                raise NotAllowed(target, "names starting with __ are reserved")
            previous = self.kinds.get(target.id)
            self.kinds[target.id] = kind if previous is None or previous == kind else _join_at(target, {previous, kind})
        elif isinstance(target, (ast.Tuple, ast.List)) and kind == META:
            for element in target.elts:
                self.assign(element, META, value)
        elif (isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List))
              and len(value.elts) == len(target.elts)):
            for element, part in zip(target.elts, value.elts):
                self.assign(element, self.value(part), part)
        else:
            raise NotAllowed(target, "assignments bind names (or unpack plain values such as x.shape)")

    # launches --------------------------------------------------------------------------------------------
    def is_launch(self, call: ast.Call) -> bool:
        target = call.func
        return isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id in self.module.kernels

    def launch(self, call: ast.Call) -> None:
        assert isinstance(call.func, ast.Subscript)
        grid = call.func.slice
        if isinstance(grid, ast.Lambda):
            self.grid_lambda(grid)
        elif self.value(grid, allow_grid=True) not in (META, GRID):
            raise NotAllowed(grid, "a grid is a tuple of plain values or lambda meta: (...)")
        for argument in call.args:
            if isinstance(argument, ast.Starred):
                self.meta(argument.value)  # *x.stride()
            elif self.value(argument) not in TENSOR_KINDS | {META}:
                raise NotAllowed(argument, "a kernel argument is a tensor or a plain value")
        for keyword in call.keywords:
            if keyword.arg is None or keyword.arg.startswith("_"):
                raise NotAllowed(keyword.value, "launch keywords are named meta-parameters (no ** and no leading _)")
            if self.value(keyword.value) not in TENSOR_KINDS | {META}:
                raise NotAllowed(keyword.value, "a kernel argument is a tensor or a plain value")

    def grid_lambda(self, node: ast.Lambda) -> None:
        arguments = node.args
        if (len(arguments.args) != 1 or arguments.vararg or arguments.kwarg or arguments.kwonlyargs or arguments.defaults
                or arguments.posonlyargs):
            raise NotAllowed(node, "a grid lambda takes exactly one parameter, meta")
        name = arguments.args[0].arg
        if name in self.local or name in self.kinds or name in self.module.names:
            raise NotAllowed(node, f"the grid lambda's parameter {name} shadows another name")
        inner = Scope(self.checker, {**self.kinds, name: META_DICT}, self.local)
        inner.meta(node.body)

    # expressions -----------------------------------------------------------------------------------------
    def meta(self, node: ast.expr) -> None:
        kind = self.value(node)
        if kind != META:
            raise NotAllowed(node, f"expected a plain value (shapes, strides, literals), got: {kind}")

    def value(self, node: ast.expr, allow_grid: bool = False) -> str:
        if isinstance(node, ast.Lambda):
            if not allow_grid:
                raise NotAllowed(node, "a lambda is only allowed as a kernel grid")
            self.grid_lambda(node)
            return GRID
        if isinstance(node, ast.Constant):
            return META
        if isinstance(node, ast.Name):
            return self.name(node, allow_grid)
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp)):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.meta(child)
            return META
        if isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                self.meta(element.value if isinstance(element, ast.Starred) else element)
            return META
        raise NotAllowed(node, f"{type(node).__name__} expressions are not allowed outside kernels")

    def name(self, node: ast.Name, allow_grid: bool) -> str:
        if node.id in self.kinds:
            kind = self.kinds[node.id]
            if kind == GRID and not allow_grid:
                raise NotAllowed(node, "a grid is only used to launch a kernel")
            return kind
        if node.id in self.local:  # assigned later in the body: settled on the next pass
            return META
        if node.id in self.module.constants:
            return META
        raise NotAllowed(node, f"{node.id} may not be used as a value here")

    def attribute(self, node: ast.Attribute) -> str:
        if node.attr.startswith("_"):
            raise NotAllowed(node, f".{node.attr}: names starting with _ are not allowed")
        dotted = resolve_name(node, self.module.aliases)
        if dotted is not None:
            if dotted in META_CONSTANTS:
                return META
            raise NotAllowed(node, f"{dotted} is not an allowed value")
        if self.value(node.value) in TENSOR_KINDS and node.attr in TENSOR_ATTRIBUTES:
            return META
        raise NotAllowed(node, f".{node.attr} is not tensor metadata (shape, dtype, device, ndim)")

    def subscript(self, node: ast.Subscript) -> str:
        base = node.value
        if isinstance(base, ast.Name) and self.kinds.get(base.id) == META_DICT:
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                return META
            raise NotAllowed(node, "meta is read as meta['NAME']")
        self.meta(base)
        parts = [node.slice.lower, node.slice.upper, node.slice.step] if isinstance(node.slice, ast.Slice) else [node.slice]
        for part in parts:
            if part is not None:
                self.meta(part)
        return META

    def call(self, node: ast.Call) -> str:
        function = node.func
        if isinstance(function, ast.Name) and function.id in self.module.functions:
            return self.helper(node)
        if isinstance(function, ast.Name) and function.id in WRAPPER_BUILTINS and function.id not in self.kinds:
            for argument in node.args:
                kind = self.value(argument.value if isinstance(argument, ast.Starred) else argument)
                if kind != META and not (function.id == "len" and kind in TENSOR_KINDS):
                    raise NotAllowed(argument, f"{function.id}() takes plain values, got a {kind}")
            if node.keywords:
                raise NotAllowed(node, f"{function.id}() is called without keywords")
            return META
        dotted = resolve_name(function, self.module.aliases)
        if dotted in META_FUNCTIONS:
            self.plain_arguments(node, node.args, node.keywords)
            return META
        if dotted in ALLOCATORS:
            arguments = list(node.args)
            if dotted.endswith("_like"):
                if not arguments or self.value(arguments[0]) not in TENSOR_KINDS:
                    raise NotAllowed(node, f"{dotted} takes a tensor first")
                arguments = arguments[1:]
            for keyword in node.keywords:
                if keyword.arg not in ALLOCATOR_KEYWORDS:
                    raise NotAllowed(keyword.value, f"{dotted} takes only {', '.join(sorted(ALLOCATOR_KEYWORDS))} as keywords")
            self.plain_arguments(node, arguments, node.keywords)
            return OUTPUT
        if isinstance(function, ast.Attribute) and dotted is None and not function.attr.startswith("_"):
            receiver = self.value(function.value)
            if receiver in TENSOR_KINDS and function.attr in TENSOR_META_METHODS | TENSOR_VIEW_METHODS:
                self.plain_arguments(node, node.args, node.keywords)
                return META if function.attr in TENSOR_META_METHODS else receiver
        raise NotAllowed(node, "this call is not in the allow-list (allocation, views, metadata, cdiv, "
                               "next_power_of_2, min/max/len/range, math, the module's own functions)")

    def plain_arguments(self, node: ast.Call, arguments: list[ast.expr], keywords: list[ast.keyword]) -> None:
        for argument in arguments:
            self.meta(argument.value if isinstance(argument, ast.Starred) else argument)
        for keyword in keywords:
            if keyword.arg is None:
                raise NotAllowed(node, "** is not allowed")
            self.meta(keyword.value)

    def helper(self, node: ast.Call) -> str:
        assert isinstance(node.func, ast.Name)
        function = self.module.functions[node.func.id]
        parameters = [argument.arg for argument in function.args.args]
        kinds: dict[str, str] = {}
        for parameter, argument in zip(parameters, node.args):
            if isinstance(argument, ast.Starred):
                raise NotAllowed(argument, "* is not allowed in calls")
            kinds[parameter] = self.value(argument)
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg not in parameters or keyword.arg in kinds:
                raise NotAllowed(node, f"{node.func.id} is called with keyword {keyword.arg}")
            kinds[keyword.arg] = self.value(keyword.value)
        defaults = len(function.args.defaults)
        for index, parameter in enumerate(parameters):
            if parameter not in kinds:
                if index < len(parameters) - defaults:
                    raise NotAllowed(node, f"{node.func.id} is called without {parameter}")
                kinds[parameter] = META
        if len(node.args) > len(parameters):
            raise NotAllowed(node, f"{node.func.id} is called with too many arguments")
        if any(kind in (GRID, META_DICT) for kind in kinds.values()):
            raise NotAllowed(node, "a grid is only used to launch a kernel")
        return self.checker.returns(function, [kinds[p] for p in parameters], node)


def _join_at(node: ast.AST, kinds: set[str]) -> str:
    try:
        return _join(kinds)
    except NotAllowed as error:
        raise NotAllowed(node, error.why) from None


def argument_kinds(arguments: tuple[Any, ...]) -> list[str]:
    return [INPUT if isinstance(a, torch.Tensor) else META for a in arguments]

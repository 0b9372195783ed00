"""Wrapper rules: plain functions in a closed, typed expression grammar (see the package docstring)."""
from __future__ import annotations

import ast
import builtins

from ..code_ast import resolve_name
from .module_rules import annotation, assigned_names, signature
from .vocabulary import (
    ALLOCATOR_KEYWORDS, ALLOCATORS, GRID, META, META_CONSTANTS, META_DICT, META_FUNCTIONS, OUTPUT, RAISABLE, TENSOR, TENSOR_ATTRIBUTES,
    TENSOR_KINDS, TENSOR_META_METHODS, TENSOR_VIEW_METHODS, WRAPPER_BUILTINS, Module, NotAllowed,
)


class WrapperChecker:
    """Plain functions: typed, closed expression grammar (see the package docstring)."""

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
            parameters = signature(function, self.module)
            if len(kinds) != len(parameters):
                raise NotAllowed(at, f"{function.name} takes {len(parameters)} arguments, called with {len(kinds)}")
            local = assigned_names(function.body)
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
            annotation(node.annotation, self.module)
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

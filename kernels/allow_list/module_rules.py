"""Module-level rules: imports, kernels, plain functions and literal constants; signatures and annotations."""
from __future__ import annotations

import ast
import builtins

from ..code_ast import resolve_name
from .vocabulary import ALLOWED_FROM_IMPORTS, ALLOWED_IMPORTS, ANNOTATION_BUILTINS, ANNOTATION_TYPES, Module, NotAllowed


def module_statement(statement: ast.stmt, module: Module, first: bool) -> None:
    if isinstance(statement, ast.Import):
        for alias in statement.names:
            if alias.name not in ALLOWED_IMPORTS:
                raise NotAllowed(statement, f"import of {alias.name}: only {', '.join(sorted(ALLOWED_IMPORTS))} may be imported")
            name, target = (alias.asname, alias.name) if alias.asname else (alias.name.split(".")[0],) * 2
            if module.aliases.get(name) != target:  # `import triton` then `import triton.language` bind one name
                bind(module, statement, name)
                module.aliases[name] = target
    elif isinstance(statement, ast.ImportFrom):
        for alias in statement.names:
            if statement.level or (statement.module, alias.name) not in ALLOWED_FROM_IMPORTS:
                raise NotAllowed(statement, "only `from triton import language` and `from __future__ import annotations`")
            if statement.module != "__future__":
                bind(module, statement, alias.asname or alias.name)
                module.aliases[alias.asname or alias.name] = f"{statement.module}.{alias.name}"
    elif isinstance(statement, ast.FunctionDef):
        bind(module, statement, statement.name)
        if not statement.decorator_list:
            module.functions[statement.name] = statement
        elif len(statement.decorator_list) == 1 and is_jit(statement.decorator_list[0], module):
            module.kernels[statement.name] = statement
        else:
            raise NotAllowed(statement, "a function is either a plain definition or decorated with @triton.jit alone")
    elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        if len(targets) != 1 or not isinstance(targets[0], ast.Name) or statement.value is None:
            raise NotAllowed(statement, "a module-level assignment binds one name to a literal")
        if isinstance(statement, ast.AnnAssign):
            annotation(statement.annotation, module)
        if not (is_literal(statement.value) or is_constexpr_literal(statement.value, module)):
            raise NotAllowed(statement, "a module-level constant must be a literal (or tl.constexpr(literal))")
        bind(module, statement, targets[0].id)
        module.constants.add(targets[0].id)
    elif isinstance(statement, ast.Expr) and first and isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str):
        pass  # the module docstring
    else:
        raise NotAllowed(statement, "module level holds only imports, kernels, functions and literal constants")


def bind(module: Module, node: ast.AST, name: str) -> None:
    if name in module.names or name.startswith("__"):
        raise NotAllowed(node, f"{name} is bound twice or is reserved")
    if name in vars(builtins):
        raise NotAllowed(node, f"{name} would shadow a builtin")


def is_jit(decorator: ast.expr, module: Module) -> bool:
    if isinstance(decorator, ast.Call):
        return (resolve_name(decorator.func, module.aliases) == "triton.jit" and not decorator.args
                and all(kw.arg is not None and is_literal(kw.value) for kw in decorator.keywords))
    return resolve_name(decorator, module.aliases) == "triton.jit"


def is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float))
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(is_literal(element) for element in node.elts)
    return False


def is_constexpr_literal(node: ast.expr, module: Module) -> bool:
    return (isinstance(node, ast.Call) and resolve_name(node.func, module.aliases) == "triton.language.constexpr"
            and len(node.args) == 1 and not node.keywords and is_literal(node.args[0]))


def annotation(node: ast.expr | None, module: Module) -> None:
    """Annotations are evaluated when a function is defined: only type names are allowed in them."""
    if node is None or (isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, str))):
        return
    if isinstance(node, ast.Name) and node.id in ANNOTATION_BUILTINS:
        return
    if isinstance(node, ast.Attribute) and resolve_name(node, module.aliases) in ANNOTATION_TYPES:
        return
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in ANNOTATION_BUILTINS:
        for element in node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]:
            annotation(element, module)
        return
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        annotation(node.left, module)
        annotation(node.right, module)
        return
    raise NotAllowed(node, "an annotation names a type (int, float, torch.Tensor, tl.constexpr, ...)")


def signature(function: ast.FunctionDef, module: Module) -> list[str]:
    arguments = function.args
    if arguments.vararg or arguments.kwarg or arguments.posonlyargs or arguments.kwonlyargs:
        raise NotAllowed(function, "parameters are plain positional names (no *args, **kwargs, / or keyword-only)")
    for default in arguments.defaults:
        if not is_literal(default):
            raise NotAllowed(default, "a default value must be a literal")
    for argument in arguments.args:
        annotation(argument.annotation, module)
        if argument.arg.startswith("_") and argument.arg != "_":
            raise NotAllowed(function, f"parameter {argument.arg}: names starting with _ are reserved")
        if argument.arg in module.names or argument.arg in vars(builtins):
            raise NotAllowed(function, f"parameter {argument.arg} shadows a module-level or builtin name")
    annotation(function.returns, module)
    return [argument.arg for argument in arguments.args]


def assigned_names(body: list[ast.stmt]) -> set[str]:
    names = set()
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                names.add(node.id)
    return names

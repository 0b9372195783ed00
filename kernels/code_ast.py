"""Facts about a candidate module read from its syntax tree, never from its tokens.

Names are resolved through the module's imports (`import triton.language as tl` makes `tl.load` resolve to
`triton.language.load`), so writing the right words in a comment, a string or an unrelated function earns
nothing: formatting and anti-hacking checks both ask this module which calls happen in which functions.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field

JIT_DECORATORS = {"triton.jit"}
TRITON_WRAPPING_DECORATORS = {"triton.autotune", "triton.heuristics"}


@dataclass
class FunctionFacts:
    node: ast.FunctionDef
    is_kernel: bool
    # Resolved dotted names of every call made in the function body (nested code included).
    calls: list[tuple[str, ast.Call]] = field(default_factory=list)


@dataclass
class ModuleFacts:
    tree: ast.Module
    aliases: dict[str, str]
    functions: dict[str, FunctionFacts]

    @property
    def kernels(self) -> dict[str, FunctionFacts]:
        return {name: f for name, f in self.functions.items() if f.is_kernel}

    @property
    def wrappers(self) -> dict[str, FunctionFacts]:
        return {name: f for name, f in self.functions.items() if not f.is_kernel}

    def imported_modules(self) -> set[str]:
        return {value.split(".")[0] for value in self.aliases.values()}

    def resolve(self, node: ast.expr) -> str | None:
        return resolve_name(node, self.aliases)


def collect_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> fully qualified name, from every import statement in the module (nested ones too)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    aliases[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def resolve_name(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """`tl.load` -> `triton.language.load` when `tl` was imported; None for names no import introduced."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


def decorator_names(function: ast.FunctionDef, aliases: dict[str, str]) -> list[str]:
    names = []
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        names.append(resolve_name(target, aliases) or "")
    return names


def analyse(code: str) -> ModuleFacts:
    """Raises SyntaxError (or RecursionError/ValueError on pathological input) when the code does not parse."""
    tree = ast.parse(code)
    aliases = collect_aliases(tree)
    functions: dict[str, FunctionFacts] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            is_kernel = any(name in JIT_DECORATORS for name in decorator_names(node, aliases))
            facts = FunctionFacts(node, is_kernel)  # type: ignore[arg-type]
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call):
                    facts.calls.append((resolve_name(inner.func, aliases) or "", inner))
            functions[node.name] = facts
    return ModuleFacts(tree, aliases, functions)


def launched_kernels(function: FunctionFacts, kernel_names: set[str]) -> set[str]:
    """Kernels launched as `kernel[grid](...)` inside the function."""
    launched = set()
    for _, call in function.calls:
        target = call.func
        if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id in kernel_names:
            launched.add(target.value.id)
    return launched


def keyword_or_position(call: ast.Call, keyword: str, position: int) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return call.args[position] if len(call.args) > position else None


# The line breaks of Python's parser and of the universal-newline reads linecache makes (not str.splitlines's).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def reread_differences(code: str, tree: ast.Module) -> list[str]:
    """Where Triton, reading each kernel's source again from the candidate's file, would see other code than `tree`.

    Triton never runs the tree that was checked: the compiler and the interpreter read every `@triton.jit`
    function's lines from its file (`inspect.getsourcelines`, through linecache) and parse them again. Two things
    make that text another program. A source encoding declaration: `ast.parse` of a string ignores it, but a file
    is decoded by it (`# coding: unicode_escape` turns a `\\n` in a comment into a line break, and UTF-7 any text
    into any other). And a line inside a function that starts with `def`: the compiler takes the first such line of
    a kernel's source for its definition and the interpreter the last (Triton 3.9's `FunctionRewriter._find_def`),
    so a `def` in a docstring makes the interpreter run that docstring's code while the compiler builds the
    kernel. So the text must be UTF-8 with no other declaration, and `def` may only begin the lines that define
    the module's top-level functions.
    """
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(code.encode("utf-8")).readline)
    except (SyntaxError, UnicodeError) as error:
        return [f"the source cannot be read back as UTF-8 text: {error}"]
    differences = []
    if encoding not in ("utf-8", "utf-8-sig"):
        differences.append(f"line 1 or 2 declares the source encoding {encoding}: Triton would read the kernels' text "
                           "decoded from it, not the text that was checked (write UTF-8 with no declaration)")
    definitions = {node.lineno for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for number, line in enumerate(_LINE_BREAK.split(code), start=1):
        stripped = line.strip()
        if stripped.startswith("def") and stripped[3:4].isspace() and number not in definitions:
            differences.append(f"line {number} starts with 'def' but defines no top-level function: Triton would "
                               "take it for a kernel's definition")
    return differences

"""The Triton internals the runner relies on, in one place, checked against the installed Triton and torch.

None of these is public API:
- the offline compile specialises a launch exactly as `JITFunction.run` does, with Triton's own argument
  binder (`triton.runtime.jit.create_function_from_signature`) and `JITFunction._pack_args`, then builds an
  `ASTSource` and calls `triton.compile` for a `GPUTarget`;
- the sandbox watches launches by patching `run(self, *args, grid, warmup, **kwargs)` of `JITFunction` and of
  the interpreter's `InterpretedFunction`;
- it switches an imported Triton to the interpreter through `triton.knobs.runtime.interpret`.

Tested range: Triton 3.6 through 3.9, torch 2.11 through 2.15. Read from the 3.6.0 and 3.9.0 sources, every
name and call signature above is the same in both releases; what changed lies inside the functions we call
(3.9's binder also accepts keyword-only kernel parameters, which the allow-list refuses anyway; 3.9's
`_pack_args` no longer turns constexpr values into attributes; 3.9's `run` adds an fpsan option to the
launch's keywords, which the offline compile leaves at the backend's default). One code path serves the
whole range, with one exception chosen by version: Triton 3.6's interpreter converts a scalar kernel argument
to a loop bound with `int(array)`, which NumPy 2.4 refuses for the one-element arrays it holds them in
("only 0-dimensional arrays can be converted to Python scalars"), so any kernel looping `range(0, K, BLOCK)`
over an argument fails under 3.6's interpreter; 3.7 fixed it with `int(array.squeeze())`, which this module
installs on 3.6. A version outside it is refused by name at import, and every signature listed in
`REQUIRED_SIGNATURES` is compared with the installed one, so a release whose internals moved fails here with
the function's name, not deep inside a candidate's compile as a wrong compilation score.
"""
from __future__ import annotations

import inspect
import re
from typing import Any, Callable

import torch
import triton
from triton import knobs
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, compiler, make_backend
from triton.runtime import interpreter, jit

TESTED_TRITON = ((3, 6), (3, 9))
TESTED_TORCH = ((2, 11), (2, 15))

# A parameter as (name, kind): kind is "positional", "*", "keyword" (keyword-only) or "**". Defaults are not
# compared: every call below passes the parameters it uses.
Parameters = list[tuple[str, str]]

# "module:qualified name" -> the parameters the runner's calls and patches assume.
REQUIRED_SIGNATURES: dict[str, Parameters] = {
    "triton.runtime.jit:create_function_from_signature": [("sig", "positional"), ("kparams", "positional"), ("backend", "positional")],
    "triton.runtime.jit:JITFunction._pack_args": [
        ("self", "positional"), ("backend", "positional"), ("kwargs", "positional"), ("bound_args", "positional"),
        ("specialization", "positional"), ("options", "positional"),
    ],
    "triton.runtime.jit:JITFunction.run": [("self", "positional"), ("args", "*"), ("grid", "keyword"), ("warmup", "keyword"), ("kwargs", "**")],
    "triton.runtime.interpreter:InterpretedFunction.run": [
        ("self", "positional"), ("args", "*"), ("grid", "keyword"), ("warmup", "keyword"), ("kwargs", "**"),
    ],
    "triton.compiler.compiler:ASTSource.__init__": [
        ("self", "positional"), ("fn", "positional"), ("signature", "positional"), ("constexprs", "positional"), ("attrs", "positional"),
    ],
    "triton.compiler.compiler:compile": [("src", "positional"), ("target", "positional"), ("options", "positional"), ("_env_vars", "positional")],
}


class UnsupportedVersion(RuntimeError):
    pass


def release(version: str) -> tuple[int, int]:
    """(major, minor) of a version string such as '3.6.0', '2.15.0+cu132' or '3.9.0.dev20260101'."""
    found = re.match(r"(\d+)\.(\d+)", version)
    if found is None:
        raise UnsupportedVersion(f"cannot read a version from {version!r}")
    return int(found[1]), int(found[2])


def check_version(package: str, version: str, tested: tuple[tuple[int, int], tuple[int, int]]) -> None:
    low, high = tested
    if not low <= release(version) <= high:
        raise UnsupportedVersion(
            f"{package} {version} is outside the range the Triton runner is tested with "
            f"({low[0]}.{low[1]} through {high[0]}.{high[1]}): it relies on {package}'s internals (kernels/triton_internals.py)"
        )


def parameters_of(function: Callable[..., Any]) -> Parameters:
    kinds = {
        inspect.Parameter.POSITIONAL_ONLY: "positional", inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
        inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.KEYWORD_ONLY: "keyword", inspect.Parameter.VAR_KEYWORD: "**",
    }
    return [(p.name, kinds[p.kind]) for p in inspect.signature(function).parameters.values()]


def signature_mismatches(found: dict[str, Parameters | None]) -> list[str]:
    """What differs between `found` (each required function's parameters, None when it is missing) and what the
    runner assumes, one line per function."""
    problems = []
    for name, expected in REQUIRED_SIGNATURES.items():
        actual = found.get(name)
        if actual is None:
            problems.append(f"{name} is missing")
        elif actual != expected:
            problems.append(f"{name} takes {actual}, the runner assumes {expected}")
    return problems


def installed_signatures() -> dict[str, Parameters | None]:
    """The parameters of each required function in the installed Triton (None where it is missing)."""
    modules = {"triton.runtime.jit": jit, "triton.runtime.interpreter": interpreter, "triton.compiler.compiler": compiler}
    found: dict[str, Parameters | None] = {}
    for name in REQUIRED_SIGNATURES:
        module_name, qualified = name.split(":")
        value: Any = modules[module_name]
        for part in qualified.split("."):
            value = getattr(value, part, None)
        found[name] = parameters_of(value) if callable(value) else None
    return found


def check_installed() -> None:
    check_version("triton", triton.__version__, TESTED_TRITON)
    check_version("torch", torch.__version__, TESTED_TORCH)
    problems = signature_mismatches(installed_signatures())
    if problems:
        raise UnsupportedVersion(f"triton {triton.__version__}'s internals differ from what the runner uses: " + "; ".join(problems))


check_installed()


def _squeezed_scalar_index(patch_tensor: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """Triton 3.7's `tl.tensor.__index__` under the interpreter, on top of 3.6's patching of the language."""
    def patch(tensor: Any, scope: Any) -> None:
        patch_tensor(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.squeeze()))

    return patch


if release(triton.__version__) == (3, 6):
    interpreter._patch_lang_tensor = _squeezed_scalar_index(interpreter._patch_lang_tensor)

# The classes whose `run` every launch goes through: compiled (a GPU) and interpreted.
KERNEL_CLASSES: tuple[type, ...] = (interpreter.InterpretedFunction, jit.JITFunction)


def set_interpreter(on: bool) -> None:
    knobs.runtime.interpret = on


def compile_for(target: GPUTarget, kernel_function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Compile `kernel_function` (undecorated) for `target` as `JITFunction.run` would for this launch's
    arguments; raises whatever Triton raises when it does not compile."""
    kernel = jit.JITFunction(kernel_function)
    backend = make_backend(target)
    binder = jit.create_function_from_signature(kernel.signature, kernel.params, backend)
    bound_args, specialization, options = binder(*args, **kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(backend, kwargs, bound_args, specialization, options)
    triton.compile(ASTSource(kernel, signature, constexprs, attrs), target=target, options=options.__dict__)

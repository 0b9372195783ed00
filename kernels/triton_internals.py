"""The Triton internals the runner relies on, in one place, checked against the installed Triton and torch.

None of these is public API:
- the offline compile specialises a launch exactly as `JITFunction.run` does, with Triton's own argument
  binder (`triton.runtime.jit.create_function_from_signature`) and `JITFunction._pack_args`, then builds an
  `ASTSource` and calls `triton.compile` for a `GPUTarget`;
- the sandbox watches launches by patching `run(self, *args, grid, warmup, **kwargs)` of `JITFunction` and of
  the interpreter's `InterpretedFunction`;
- it switches an imported Triton to the interpreter through `triton.knobs.runtime.interpret`;
- the memory guard (`memory_guard.py`) sees every interpreted launch through `GridExecutor.__call__` and
  `GridExecutor._init_args_hst` (the host tensors the programs address), every memory access through the
  interpreter builder's `create_masked_load`, `create_masked_store` (with the stored values), `create_atomic_cas`
  and `create_atomic_rmw` (with its operation): the builder's plain loads and stores, its atomic loads, stores
  and polls (3.9), and its descriptor (3.9) and block-pointer (3.6) loads and stores all call the masked ones;
  and every `tl.debug_barrier()` through `create_barrier`;
- the replay runs a grid's programs in another order by mapping the program index the interpreter sets
  (`InterpreterBuilder.set_grid_idx`, reading the grid from its `grid_dim`), and the lanes of each atomic in
  another order by permuting the operands of `create_atomic_cas` and `create_atomic_rmw` (and their result back).

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
the function's name, not deep inside a candidate's compile as a wrong compilation score. The builder's masked
load and store take other trailing parameters in 3.6 (cache modifier, eviction policy) than in 3.9 (cache policy);
the guard reads only their first ones, so only those are compared (`MORE`).
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import secrets
from typing import Any, Callable, Protocol

import numpy as np
import torch
import triton
from triton import knobs
from triton.backends.compiler import GPUTarget
from triton._C.libtriton import ir
from triton.compiler import ASTSource, compiler, make_backend
from triton.runtime import interpreter, jit
from triton.tools.tensor_descriptor import TensorDescriptor

TESTED_TRITON = ((3, 6), (3, 9))
TESTED_TORCH = ((2, 11), (2, 15))

# A parameter as (name, kind): kind is "positional", "*", "keyword" (keyword-only) or "**". Defaults are not
# compared: every call below passes the parameters it uses. A list ending in MORE names the first parameters
# only: the memory guard's hook reads those and passes any others through unread.
Parameters = list[tuple[str, str]]
MORE = ("...", "more")

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
    "triton.runtime.interpreter:GridExecutor.__call__": [("self", "positional"), ("args_dev", "*"), ("kwargs", "**")],
    "triton.runtime.interpreter:GridExecutor._init_args_hst": [("self", "positional"), ("args_dev", "positional"), ("kwargs", "positional")],
    "triton.runtime.interpreter:InterpreterBuilder.create_masked_load": [
        ("self", "positional"), ("ptrs", "positional"), ("mask", "positional"), ("other", "positional"), MORE,
    ],
    "triton.runtime.interpreter:InterpreterBuilder.create_masked_store": [
        ("self", "positional"), ("ptrs", "positional"), ("value", "positional"), ("mask", "positional"), MORE,
    ],
    "triton.runtime.interpreter:InterpreterBuilder.create_atomic_cas": [
        ("self", "positional"), ("ptr", "positional"), ("cmp", "positional"), ("val", "positional"), ("sem", "positional"),
        ("scope", "positional"),
    ],
    "triton.runtime.interpreter:InterpreterBuilder.create_dot": [
        ("self", "positional"), ("a", "positional"), ("b", "positional"), ("d", "positional"), ("input_precision", "positional"),
        ("max_num_imprecise_acc", "positional"),
    ],
    "triton.runtime.interpreter:InterpreterBuilder.create_atomic_rmw": [
        ("self", "positional"), ("rmwOp", "positional"), ("ptr", "positional"), ("val", "positional"), ("mask", "positional"),
        ("sem", "positional"), ("scope", "positional"),
    ],
    "triton.runtime.interpreter:InterpreterBuilder.create_barrier": [("self", "positional")],
    "triton.runtime.interpreter:InterpreterBuilder.set_grid_idx": [("self", "positional"), ("x", "positional"), ("y", "positional"), ("z", "positional")],
}

# The read-modify-write operations (`ir.ATOMIC_OP` member names, 3.6 through 3.9) whose final value does not depend
# on the order programs apply them in; any other (XCHG) is reported as an order-dependent write ("exchange").
COMMUTATIVE_RMW = frozenset({"ADD", "FADD", "MIN", "MAX", "UMIN", "UMAX", "AND", "OR", "XOR"})


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
        first = expected[:-1] if expected[-1:] == [MORE] else expected
        if actual is None:
            problems.append(f"{name} is missing")
        elif actual != expected and (first is expected or actual[:len(first)] != first):
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


def round_dot_inputs_to_tf32() -> None:
    """Make the interpreter's `tl.dot` of two float32 blocks at the precision "tf32" (the default) round both
    inputs to TF32 first, as an NVIDIA GPU's tensor cores take them; it otherwise multiplies the full float32
    values. A kernel that leaves the default is ~1e-3 off in relative terms on the GPU and would pass a 1e-4
    tolerance here (a matmul solution without `input_precision="ieee"` did). Rounded to nearest, ties to even:
    how tensor cores drop the 13 low mantissa bits is not documented, and either way errs by up to 2^-11."""
    dot = interpreter.InterpreterBuilder.create_dot

    def create_dot(self: Any, a: Any, b: Any, d: Any, input_precision: Any, max_num_imprecise_acc: Any) -> Any:
        if input_precision == ir.INPUT_PRECISION.TF32 and a.dtype.is_fp32() and b.dtype.is_fp32():
            a, b = (interpreter.TensorHandle(_rounded_to_tf32(t.data), t.dtype) for t in (a, b))
        return dot(self, a, b, d, input_precision, max_num_imprecise_acc)

    interpreter.InterpreterBuilder.create_dot = create_dot


def _rounded_to_tf32(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to 10 mantissa bits, ties to even; infinities and NaN kept."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    special = (bits & np.uint32(0x7F800000)) == np.uint32(0x7F800000)
    rounded = (bits + np.uint32(0x0FFF) + ((bits >> np.uint32(13)) & np.uint32(1))) & np.uint32(0xFFFFE000)
    return np.where(special, bits, rounded).view(np.float32)


class OfflineKernel:
    """`kernel_function` (undecorated) as `JITFunction.run` specialises it for `target`: Triton's binder is built
    once per kernel, then each launch is specialised by it."""

    def __init__(self, target: GPUTarget, kernel_function: Callable[..., Any]) -> None:
        self.target = target
        self.kernel = jit.JITFunction(kernel_function)
        self.backend = make_backend(target)
        self.binder = jit.create_function_from_signature(self.kernel.signature, self.kernel.params, self.backend)

    def specialise(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Callable[[], None]]:
        """This launch's key, as `JITFunction.run`'s kernel cache tells launches apart (launches with one key run
        the same compiled code), and a call that compiles that code, raising whatever Triton raises."""
        bound_args, specialization, options = self.binder(*args, **kwargs)

        def compile_it() -> None:
            packed, signature, constexprs, attrs = self.kernel._pack_args(self.backend, kwargs, bound_args, specialization, options)
            triton.compile(ASTSource(self.kernel, signature, constexprs, attrs), target=self.target, options=packed.__dict__)

        return repr(specialization) + repr(options), compile_it


class MemoryWatcher(Protocol):
    """What `watch_interpreted_memory` reports to, before each launch's programs run, before each access and at
    each barrier."""

    def launch(self, kernel: str, run: Callable[[], None]) -> None:
        """Run the launch (`run` executes every program of its grid, one after another)."""

    def tensors(self, tensors: list[torch.Tensor]) -> None:
        """The host tensors the current launch received: the only memory its pointers come from."""

    def access(self, kind: str, pointers: np.ndarray, mask: np.ndarray | None, size: int, program: tuple[int, int, int],
               values: np.ndarray | None = None) -> None:
        """`kind` of `size` bytes at each of `pointers` where `mask` is true (every lane when None), by `program` of
        the current launch; raising refuses the access. Kinds: "load" and "store" (plain), "atomic" (an atomic
        load or poll, or a read-modify-write whose result does not depend on order: `COMMUTATIVE_RMW`) and
        "exchange" (an atomic write whose result does: `atomic_xchg`, `atomic_cas`, an atomic store). `values`:
        what each lane writes, for plain and atomic stores and exchanges (None otherwise)."""

    def barrier(self, program: tuple[int, int, int]) -> None:
        """`program` reached a `tl.debug_barrier()`: its lanes' earlier accesses are ordered before its later ones."""


def watch_interpreted_memory(watcher: MemoryWatcher) -> None:
    """Report every interpreted launch, every memory access of its programs and every barrier to `watcher` (the
    interpreter itself checks none of them). Installed once in a sandbox, after `set_interpreter(True)`."""
    builder, executor = interpreter.InterpreterBuilder, interpreter.GridExecutor
    masked_load, masked_store = builder.create_masked_load, builder.create_masked_store
    atomic_cas, atomic_rmw, barrier = builder.create_atomic_cas, builder.create_atomic_rmw, builder.create_barrier
    run_launch, host_arguments = executor.__call__, executor._init_args_hst
    atomic = False  # inside an atomic load, store or poll, which call the masked load and store

    def create_masked_load(self: Any, ptrs: Any, mask: Any, *rest: Any, **options: Any) -> Any:
        watcher.access("atomic" if atomic else "load", ptrs.data, mask.data, _element_bytes(ptrs), self.grid_idx)
        return masked_load(self, ptrs, mask, *rest, **options)

    def create_masked_store(self: Any, ptrs: Any, value: Any, mask: Any, *rest: Any, **options: Any) -> Any:
        # An atomic store (3.9) writes what it writes whatever the other programs wrote: order decides the result.
        watcher.access("exchange" if atomic else "store", ptrs.data, mask.data, _element_bytes(ptrs), self.grid_idx, value.data)
        return masked_store(self, ptrs, value, mask, *rest, **options)

    def create_atomic_cas(self: Any, ptr: Any, cmp: Any, val: Any, sem: Any, scope: Any) -> Any:
        watcher.access("exchange", ptr.data, None, _element_bytes(ptr), self.grid_idx)
        return atomic_cas(self, ptr, cmp, val, sem, scope)

    def create_atomic_rmw(self: Any, rmw_op: Any, ptr: Any, val: Any, mask: Any, sem: Any, scope: Any) -> Any:
        if getattr(rmw_op, "name", None) in COMMUTATIVE_RMW:
            watcher.access("atomic", ptr.data, mask.data, _element_bytes(ptr), self.grid_idx)
        else:
            watcher.access("exchange", ptr.data, mask.data, _element_bytes(ptr), self.grid_idx, val.data)
        return atomic_rmw(self, rmw_op, ptr, val, mask, sem, scope)

    def create_barrier(self: Any) -> Any:
        watcher.barrier(self.grid_idx)
        return barrier(self)

    def atomically(method: Callable[..., Any]) -> Callable[..., Any]:
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal atomic
            atomic = True
            try:
                return method(self, *args, **kwargs)
            finally:
                atomic = False

        return run

    def call(self: Any, *args_dev: Any, **kwargs: Any) -> None:
        watcher.launch(self.fn.__name__, lambda: run_launch(self, *args_dev, **kwargs))

    def init_args_hst(self: Any, args_dev: Any, kwargs: Any) -> Any:
        args_hst, kwargs_hst = host_arguments(self, args_dev, kwargs)
        watcher.tensors(_tensors_in([*args_hst, *kwargs_hst.values()]))
        return args_hst, kwargs_hst

    builder.create_masked_load, builder.create_masked_store = create_masked_load, create_masked_store
    builder.create_atomic_cas, builder.create_atomic_rmw, builder.create_barrier = create_atomic_cas, create_atomic_rmw, create_barrier
    # Triton 3.9's atomic loads, stores and polls (3.6 has none) reach memory through the masked load and store:
    # what they load counts as atomic, what they store as an exchange. Only their name is relied on, so they are
    # not in REQUIRED_SIGNATURES.
    for name in ("create_atomic_load", "create_atomic_store", "create_atomic_poll"):
        if hasattr(builder, name):
            setattr(builder, name, atomically(getattr(builder, name)))
    executor.__call__, executor._init_args_hst = call, init_args_hst


class InterpretedOrder:
    """Whether interpreted launches run in another order: the grid's programs, and the lanes of every atomic, in a
    random order other than first to last (installed by `control_interpreted_order`). The interpreter otherwise
    always takes one order, program 0 first and lane 0 first, where a GPU may take any: a result that depends on
    it (an atomic counter's old value picking where a program writes, a chain of programs each reading what the
    one before deposited) is right in that order only. The orders are drawn from the operating system's
    randomness, so no kernel can be written for the one that will be tried."""

    def __init__(self) -> None:
        self.shuffled = False
        self.random = np.random.default_rng(secrets.randbits(128))
        self.programs = np.zeros(0, dtype=np.int64)  # the running launch's order: flat program index by position

    def permutation(self, count: int) -> np.ndarray:
        """A random order of `count` things, never first to last where there are two or more."""
        order = self.random.permutation(count)
        return np.roll(order, 1) if count > 1 and (order == np.arange(count)).all() else order


def control_interpreted_order() -> InterpretedOrder:
    """Installs the reordering of `InterpretedOrder` (off until its `shuffled` is set). Installed before the memory
    guard's hooks, so the guard sees every access as the kernel wrote it."""
    builder = interpreter.InterpreterBuilder
    set_grid_idx, atomic_cas, atomic_rmw = builder.set_grid_idx, builder.create_atomic_cas, builder.create_atomic_rmw
    order = InterpretedOrder()

    def program(self: Any, x: int, y: int, z: int) -> Any:
        if order.shuffled:
            _, ny, nz = self.grid_dim
            position = (x * ny + y) * nz + z
            if position == 0:  # the grid loop starts a launch at (0, 0, 0)
                order.programs = order.permutation(int(np.prod(self.grid_dim)))
            x, rest = divmod(int(order.programs[position]), ny * nz)
            y, z = divmod(rest, nz)
        return set_grid_idx(self, x, y, z)

    def create_atomic_cas(self: Any, ptr: Any, cmp: Any, val: Any, sem: Any, scope: Any) -> Any:
        if not order.shuffled:
            return atomic_cas(self, ptr, cmp, val, sem, scope)
        lanes = order.permutation(np.asarray(ptr.data).size)
        return _lanes_restored(atomic_cas(self, *(_lanes_in(h, lanes) for h in (ptr, cmp, val)), sem, scope), lanes)

    def create_atomic_rmw(self: Any, rmw_op: Any, ptr: Any, val: Any, mask: Any, sem: Any, scope: Any) -> Any:
        if not order.shuffled:
            return atomic_rmw(self, rmw_op, ptr, val, mask, sem, scope)
        lanes = order.permutation(np.asarray(ptr.data).size)
        return _lanes_restored(atomic_rmw(self, rmw_op, *(_lanes_in(h, lanes) for h in (ptr, val, mask)), sem, scope), lanes)

    builder.set_grid_idx, builder.create_atomic_cas, builder.create_atomic_rmw = program, create_atomic_cas, create_atomic_rmw
    return order


def _lanes_in(handle: Any, lanes: np.ndarray) -> Any:
    """An interpreter tensor handle whose i-th lane (element in flat order) is `handle`'s lane lanes[i], same shape."""
    data = np.asarray(handle.data)
    return dataclasses.replace(handle, data=np.ascontiguousarray(data.reshape(-1)[lanes]).reshape(data.shape))


def _lanes_restored(handle: Any, lanes: np.ndarray) -> Any:
    """The inverse of `_lanes_in`: each lane's result back at the lane it came from."""
    data = np.asarray(handle.data)
    restored = np.empty_like(data.reshape(-1))
    restored[lanes] = data.reshape(-1)
    return dataclasses.replace(handle, data=restored.reshape(data.shape))


def _element_bytes(pointers: Any) -> int:
    """The bytes one lane accesses: the pointee's NumPy size, as the interpreter loads and stores it."""
    return np.dtype(interpreter._get_np_dtype(pointers.get_element_ty())).itemsize


def _tensors_in(values: list[Any]) -> list[torch.Tensor]:
    """The tensors among a launch's host arguments: in tuples, as tensor descriptors' bases, reinterpreted
    (`triton.reinterpret`'s wrapper) or plain."""
    found: list[torch.Tensor] = []
    for value in values:
        if isinstance(value, tuple):
            found += _tensors_in(list(value))
        elif isinstance(value, TensorDescriptor):
            found += _tensors_in([value.base])
        elif hasattr(value, "data_ptr"):
            found.append(interpreter._unwrap_tensor(value))
    return found

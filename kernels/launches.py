"""Instrumentation of Triton kernel launches inside the sandbox.

Every launch goes through `KernelInterface.run` of the object `@triton.jit` returned (an InterpretedFunction
under TRITON_INTERPRET=1, a JITFunction on a GPU); patching `run` on those classes sees launches however the
candidate spells them (`kernel[grid](...)`, autotuned, via heuristics). The recorder counts launches, keeps the
arguments of each kernel's first launch (for the offline compile), can turn every kernel into a no-op (the
monkey-patch check), keeps what each launch left in the memory of its tensor arguments (so the evaluator can
check that the returned tensor holds exactly what the kernels wrote, whatever happened on the host after),
and tells the torch-op guard when a kernel is running so the interpreter's own tensor copies are not blamed on
the wrapper.
"""
from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .triton_internals import KERNEL_CLASSES

# aten ops a wrapper may run: allocation, views and metadata. Anything else computes on values.
ALLOWED_WRAPPER_OPS = {
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "new_zeros", "new_full", "zeros",
    "zeros_like", "full", "full_like", "fill_", "zero_", "view", "_unsafe_view", "reshape", "_reshape_alias",
    "as_strided", "t", "transpose", "permute", "expand", "unsqueeze", "squeeze", "select", "slice", "alias",
    "detach", "clone", "lift_fresh", "is_contiguous", "sym_size", "sym_stride", "sym_numel",
    "sym_storage_offset",
}


@dataclass
class Launch:
    kernel: Callable[..., Any]  # the undecorated Python function
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class LaunchRecorder:
    launches: int = 0
    first_launches: dict[str, Launch] = field(default_factory=dict)
    noop: bool = False
    in_kernel: bool = False
    watch_effects: bool = False
    # Storage address -> a copy of that storage's bytes right after the last launch that took it as an argument.
    written: dict[int, torch.UntypedStorage] = field(default_factory=dict)

    @contextlib.contextmanager
    def kernel_running(self) -> Iterator[None]:
        self.in_kernel = True
        try:
            yield
        finally:
            self.in_kernel = False

    @contextlib.contextmanager
    def watching_effects(self) -> Iterator[None]:
        self.watch_effects = True
        try:
            yield
        finally:
            self.watch_effects = False

    def record_effects(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        for value in [*args, *kwargs.values()]:
            if isinstance(value, torch.Tensor):
                storage = value.untyped_storage()
                self.written[storage.data_ptr()] = storage.clone()

    def left_in(self, result: Any) -> torch.Tensor | None:
        """`result` as the kernels left it (same view on the copy taken after the last launch that wrote its
        memory), or None when no kernel ever had that memory as an argument."""
        if not isinstance(result, torch.Tensor):
            return None
        copy = self.written.get(result.untyped_storage().data_ptr())
        if copy is None:
            return None
        view = torch.empty(0, dtype=result.dtype, device=result.device)
        return view.set_(copy, result.storage_offset(), result.shape, result.stride()).detach().cpu().clone()


RECORDER = LaunchRecorder()


def install() -> None:
    """Patch the launch path of both kernel classes (idempotent: the sandbox is a fresh fork each time)."""
    for cls in KERNEL_CLASSES:
        original = cls.run

        def run(self: Any, *args: Any, grid: Any, warmup: bool, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            if warmup:
                return _original(self, *args, grid=grid, warmup=warmup, **kwargs)
            RECORDER.launches += 1
            RECORDER.first_launches.setdefault(self.fn.__name__, Launch(self.fn, args, dict(kwargs)))
            grid = _resolve_grid(self.fn, grid, args, kwargs)
            if RECORDER.noop:
                return None
            with RECORDER.kernel_running():  # the copies below are the recorder's, not the wrapper's
                launched = _original(self, *args, grid=grid, warmup=warmup, **kwargs)
                if RECORDER.watch_effects:
                    RECORDER.record_effects(args, kwargs)
            return launched

        cls.run = run  # type: ignore[method-assign]


def _resolve_grid(fn: Callable[..., Any], grid: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call a grid callable here, outside the launch (and under the torch-op guard, in no-op passes too): work
    hidden in it is the wrapper's, not a kernel's. Left to the launch to report if it fails here."""
    if not callable(grid):
        return grid
    parameters = inspect.signature(fn).parameters
    try:
        return grid(inspect.getcallargs(fn, *args, **{k: v for k, v in kwargs.items() if k in parameters}))
    except Exception:
        return grid


class WrapperOpGuard(TorchDispatchMode):
    """Records the aten ops the wrapper runs outside kernels that are not allocation, views or metadata."""

    def __init__(self) -> None:
        super().__init__()
        self.forbidden: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
        name = func.overloadpacket.__name__
        if not RECORDER.in_kernel and name not in ALLOWED_WRAPPER_OPS and name not in self.forbidden:
            self.forbidden.append(name)
        return func(*args, **(kwargs or {}))

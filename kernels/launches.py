"""Instrumentation of Triton kernel launches inside the sandbox.

Every launch goes through `KernelInterface.run` of the object `@triton.jit` returned (an InterpretedFunction
under TRITON_INTERPRET=1, a JITFunction on a GPU); patching `run` on those classes sees launches however the
candidate spells them (`kernel[grid](...)`, autotuned, via heuristics). The recorder counts launches, keeps the
arguments of each kernel's first launch (for the offline compile), can turn every kernel into a no-op (the
monkey-patch check), and tells the torch-op guard when a kernel is running so the interpreter's own tensor
copies are not blamed on the wrapper.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from torch.utils._python_dispatch import TorchDispatchMode
from triton.runtime.interpreter import InterpretedFunction
from triton.runtime.jit import JITFunction

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

    @contextlib.contextmanager
    def kernel_running(self) -> Iterator[None]:
        self.in_kernel = True
        try:
            yield
        finally:
            self.in_kernel = False


RECORDER = LaunchRecorder()


def install() -> None:
    """Patch the launch path of both kernel classes (idempotent: the sandbox is a fresh fork each time)."""
    for cls in (InterpretedFunction, JITFunction):
        original = cls.run

        def run(self: Any, *args: Any, grid: Any, warmup: bool, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            if warmup:
                return _original(self, *args, grid=grid, warmup=warmup, **kwargs)
            RECORDER.launches += 1
            RECORDER.first_launches.setdefault(self.fn.__name__, Launch(self.fn, args, dict(kwargs)))
            if RECORDER.noop:
                return None
            with RECORDER.kernel_running():
                return _original(self, *args, grid=grid, warmup=warmup, **kwargs)

        cls.run = run  # type: ignore[method-assign]


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

"""Recording of Triton kernel launches in the tracing sandbox.

Every launch goes through `KernelInterface.run` of the object `@triton.jit` returned (a JITFunction, or an
InterpretedFunction under TRITON_INTERPRET=1); patching `run` on those classes sees launches however the
candidate spells them. Here a launch is recorded, never run: the recorder writes down the kernel's name, the
grid (a grid callable is called here, under the torch-op guard, so work hidden in it is the wrapper's), and
its arguments as views of the inputs or of buffers whose bytes it copies when a launch first takes them
(`trace.py`). A host copy the wrapper makes (`contiguous()` or `reshape` of a strided input dispatch to aten's
`clone`) is recorded as such, so the replay redoes it from the inputs it runs on instead of carrying the
trial's values in the copy's bytes. This all runs in the candidate's process, so none of it is trusted: the evaluator replays the
trace (`replay.py`) and judges what the replay computes. The torch-op guard's findings can only count against
a candidate.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from triton.language import constexpr

from .trace import SCALAR_TYPES, tensor_record
from .triton_internals import KERNEL_CLASSES

# aten ops a wrapper may run: allocation, views and metadata. Anything else computes on values.
ALLOWED_WRAPPER_OPS = {
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "new_zeros", "new_full", "zeros",
    "zeros_like", "full", "full_like", "fill_", "zero_", "view", "_unsafe_view", "reshape", "_reshape_alias",
    "as_strided", "t", "transpose", "permute", "expand", "unsqueeze", "squeeze", "select", "slice", "alias",
    "detach", "clone", "lift_fresh", "is_contiguous", "sym_size", "sym_stride", "sym_numel",
    "sym_storage_offset",
}


class LaunchRecorder:
    """Turns the launches of one call into a raw trace (`trace.py`): the kernels themselves never run here."""

    def __init__(self, inputs: tuple[Any, ...]) -> None:
        self.inputs = {a.untyped_storage().data_ptr(): i for i, a in enumerate(inputs) if isinstance(a, torch.Tensor)}
        self.buffer_index: dict[int, int] = {}
        self.buffers: list[torch.Tensor] = []
        self.launches: list[dict[str, Any]] = []
        self.copies: list[dict[str, Any]] = []
        self.recording = False  # the recorder's own tensor reads are not the wrapper's

    def launch(self, kernel: str, grid: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.recording = True
        try:
            self.launches.append({"kernel": kernel, "grid": _grid_sizes(grid), "args": [self.argument(a) for a in args],
                                  "kwargs": {name: self.argument(v) for name, v in kwargs.items()}})
        finally:
            self.recording = False

    def copy(self, source: torch.Tensor, target: torch.Tensor) -> None:
        self.recording = True
        try:
            self.copies.append({"source": self.argument(source), "target": self.argument(target), "before_launch": len(self.launches)})
        finally:
            self.recording = False

    def trace(self, result: Any) -> dict[str, Any]:
        if not isinstance(result, torch.Tensor):
            raise TypeError(f"the entrypoint returned {type(result).__name__}, not a tensor")
        self.recording = True
        try:
            return {"buffers": self.buffers, "launches": self.launches, "copies": self.copies, "result": self.argument(result)}
        finally:
            self.recording = False

    def argument(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            address = storage.data_ptr()
            if address in self.inputs:
                return tensor_record("input", self.inputs[address], value)
            if address not in self.buffer_index:
                self.buffer_index[address] = len(self.buffers)
                self.buffers.append(torch.empty(0, dtype=torch.uint8).set_(storage.clone()))
            return tensor_record("buffer", self.buffer_index[address], value)
        if isinstance(value, constexpr):
            return self.argument(value.value)
        if isinstance(value, SCALAR_TYPES):
            return value
        raise TypeError(f"a kernel argument of type {type(value).__name__} cannot be launched")


def _grid_sizes(grid: Any) -> list[int]:
    sizes = list(grid) if isinstance(grid, (tuple, list)) else [grid]
    return [int(size) for size in sizes]


RECORDER: LaunchRecorder | None = None


def install() -> None:
    """Patch the launch path of both kernel classes so a launch is recorded, not run (idempotent: the sandbox
    is a fresh fork each time)."""
    for cls in KERNEL_CLASSES:
        def run(self: Any, *args: Any, grid: Any, warmup: bool, **kwargs: Any) -> None:
            if RECORDER is None:
                raise RuntimeError("kernels launch only inside the entrypoint")
            RECORDER.launch(self.fn.__name__, _resolve_grid(self.fn, grid, args, kwargs), args, kwargs)

        cls.run = run  # type: ignore[method-assign]


def _resolve_grid(fn: Callable[..., Any], grid: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A grid callable gets the launch's arguments by parameter name, as Triton gives them (`meta`)."""
    if not callable(grid):
        return grid
    parameters = inspect.signature(fn).parameters
    return grid(inspect.getcallargs(fn, *args, **{k: v for k, v in kwargs.items() if k in parameters}))


class WrapperOpGuard(TorchDispatchMode):
    """Records the aten ops the wrapper runs outside kernels that are not allocation, views or metadata, and
    hands the recorder the copies it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.forbidden: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
        name = func.overloadpacket.__name__
        wrapper = RECORDER is not None and not RECORDER.recording
        if wrapper and name not in ALLOWED_WRAPPER_OPS and name not in self.forbidden:
            self.forbidden.append(name)
        result = func(*args, **(kwargs or {}))
        if wrapper and name == "clone" and RECORDER is not None:
            RECORDER.copy(args[0], result)
        return result

"""A launch trace: what one call of the candidate's entrypoint asked the GPU to do, and nothing else.

The tracing sandbox runs the candidate's host code and records, per call, the memory it handed to kernels
(each buffer's bytes when a launch first took it), the launches (kernel name, grid, arguments as views of the
inputs or of those buffers, plain values), the host copies between them (`x.contiguous()` of a strided
input: which view was copied into which buffer, and before which launch) and which view it returned. That record comes from an untrusted
process, so it arrives as plain data (`torch.save` with `weights_only` loading) and `parse_trial` checks every
field before anything uses it: a malformed trace is a failed trial, never a crash of the evaluator.

Whatever a trace says, replaying it (`replay.py`) can only allocate those buffers, redo its copies, run the
module's own kernels on the real inputs and read the returned view: host computation is not replayed. Data computed on the host can
ride only in the trace's bytes and plain values, and those were fixed before the evaluator drew the fresh
inputs it also replays the trace on (`evaluate.py`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import torch

DTYPES: dict[str, torch.dtype] = {
    str(dtype).removeprefix("torch."): dtype
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.int16, torch.int32,
                  torch.int64, torch.uint8, torch.bool)
}
# Bounds on what a trace may ask for: far above any honest wrapper's, far below what would stall a replay.
MAX_LAUNCHES = 4096
MAX_COPIES = 256
MAX_BUFFERS = 256
MAX_DIMENSIONS = 8
MAX_PROGRAMS = 1 << 24
SCALAR_TYPES = (bool, int, float, type(None))
Scalar = Union[bool, int, float, None]


@dataclass(frozen=True)
class TensorRef:
    """A view of an input (`source` "input", index into the entrypoint's arguments) or of a buffer."""

    source: str
    index: int
    dtype: torch.dtype
    offset: int  # in elements of `dtype`
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def memory(self) -> tuple[str, int]:
        return self.source, self.index


Argument = Union[TensorRef, Scalar]


@dataclass(frozen=True)
class KernelLaunch:
    kernel: str
    grid: tuple[int, ...]
    args: tuple[Argument, ...]
    kwargs: dict[str, Argument]

    def memories(self) -> set[tuple[str, int]]:
        return {a.memory for a in (*self.args, *self.kwargs.values()) if isinstance(a, TensorRef)}


@dataclass(frozen=True)
class HostCopy:
    """The wrapper copied `source` into the buffer view `target` (a `contiguous()` or `reshape` that could not
    be a view) before launch number `before_launch`: the replay redoes the copy from whatever `source` then holds."""

    source: TensorRef
    target: TensorRef
    before_launch: int


@dataclass(frozen=True)
class Trace:
    buffers: tuple[torch.Tensor, ...]  # uint8, one per buffer: its bytes when first handed to a kernel (or returned)
    launches: tuple[KernelLaunch, ...]
    copies: tuple[HostCopy, ...]  # in the order the wrapper made them
    result: TensorRef


@dataclass(frozen=True)
class TracedCall:
    """One call of the entrypoint as the tracing sandbox reported it (untrusted: its error and torch ops only
    count against it)."""

    error: str | None
    trace: Trace | None
    torch_ops: tuple[str, ...]

    def kernels(self) -> set[str]:
        return {launch.kernel for launch in self.trace.launches} if self.trace is not None else set()


class MalformedTrace(ValueError):
    pass


def tensor_record(source: str, index: int, tensor: torch.Tensor) -> dict[str, Any]:
    """The raw form of a view, as the tracing sandbox writes it."""
    return {"source": source, "index": index, "dtype": str(tensor.dtype).removeprefix("torch."), "offset": tensor.storage_offset(),
            "shape": list(tensor.shape), "stride": list(tensor.stride())}


def parse_trial(raw: Any, inputs: tuple[Any, ...]) -> Trace:
    """Check an untrusted trace against the real inputs' layout; raises MalformedTrace naming the field."""
    record = _dict(raw, "trace", {"buffers", "launches", "copies", "result"})
    buffers = _list(record["buffers"], "buffers", MAX_BUFFERS)
    for index, buffer in enumerate(buffers):
        if not (isinstance(buffer, torch.Tensor) and buffer.dtype == torch.uint8 and buffer.dim() == 1 and buffer.layout == torch.strided
                and buffer.device.type == "cpu" and buffer.is_contiguous()):
            raise MalformedTrace(f"buffers[{index}]: not a flat uint8 tensor")
    sizes = {("buffer", i): b.numel() for i, b in enumerate(buffers)}
    sizes |= {("input", i): a.untyped_storage().nbytes() for i, a in enumerate(inputs) if isinstance(a, torch.Tensor)}
    launches = tuple(_launch(raw_launch, f"launches[{i}]", sizes) for i, raw_launch in enumerate(_list(record["launches"], "launches", MAX_LAUNCHES)))
    copies = tuple(_copy(raw_copy, f"copies[{i}]", sizes, len(launches)) for i, raw_copy in enumerate(_list(record["copies"], "copies", MAX_COPIES)))
    if any(earlier.before_launch > later.before_launch for earlier, later in zip(copies, copies[1:])):
        raise MalformedTrace("copies: not in the order of the launches")
    result = _argument(record["result"], "result", sizes)
    if not isinstance(result, TensorRef):
        raise MalformedTrace("result: not a tensor view")
    return Trace(tuple(b.clone() for b in buffers), launches, copies, result)


def copy_of(tensor: torch.Tensor, device: str | torch.device | None = None) -> torch.Tensor:
    """A copy of the tensor's whole storage, on `device`, viewed as the tensor is (same shape, strides and storage
    offset). `clone()` and `to()` would make a view that is not dense contiguous, while a trace's views of an
    input are in the coordinates of its storage."""
    storage = torch.empty(0, dtype=torch.uint8, device=tensor.device).set_(tensor.untyped_storage())
    copied = storage.to(device, copy=True) if device is not None else storage.clone()
    return torch.empty(0, dtype=tensor.dtype, device=copied.device).set_(
        copied.untyped_storage(), tensor.storage_offset(), tensor.shape, tensor.stride())


def copy_args(args: tuple[Any, ...], device: str | torch.device | None = None) -> tuple[Any, ...]:
    return tuple(copy_of(a, device) if isinstance(a, torch.Tensor) else a for a in args)


def layout(tensor: torch.Tensor) -> tuple[Any, ...]:
    """What a trace's views of an input depend on: all of it must match between inputs a trace is replayed on."""
    return tensor.shape, tensor.stride(), tensor.storage_offset(), tensor.untyped_storage().nbytes(), tensor.dtype


def materialize(ref: TensorRef, inputs: tuple[Any, ...], buffers: list[torch.Tensor]) -> torch.Tensor:
    base = inputs[ref.index] if ref.source == "input" else buffers[ref.index]
    return torch.empty(0, dtype=ref.dtype).set_(base.untyped_storage(), ref.offset, ref.shape, ref.stride)


def _launch(raw: Any, where: str, sizes: dict[tuple[str, int], int]) -> KernelLaunch:
    record = _dict(raw, where, {"kernel", "grid", "args", "kwargs"})
    kernel = record["kernel"]
    if not (isinstance(kernel, str) and kernel.isidentifier() and not kernel.startswith("_")):
        raise MalformedTrace(f"{where}.kernel: not a public name")
    grid = _list(record["grid"], f"{where}.grid", 3)
    programs = 1
    for size in grid:
        programs *= _count(size, f"{where}.grid")
    if not grid or programs > MAX_PROGRAMS:
        raise MalformedTrace(f"{where}.grid: {grid} is not 1 to 3 sizes with at most {MAX_PROGRAMS} programs")
    args = tuple(_argument(a, f"{where}.args[{i}]", sizes) for i, a in enumerate(_list(record["args"], f"{where}.args", 256)))
    kwargs = _dict(record["kwargs"], f"{where}.kwargs", None)
    for name in kwargs:
        if not (isinstance(name, str) and name.isidentifier()):
            raise MalformedTrace(f"{where}.kwargs: {name!r} is not a parameter name")
    return KernelLaunch(kernel, tuple(grid), args, {name: _argument(v, f"{where}.kwargs.{name}", sizes) for name, v in kwargs.items()})


def _copy(raw: Any, where: str, sizes: dict[tuple[str, int], int], launches: int) -> HostCopy:
    record = _dict(raw, where, {"source", "target", "before_launch"})
    source, target = (_argument(record[key], f"{where}.{key}", sizes) for key in ("source", "target"))
    if not (isinstance(source, TensorRef) and isinstance(target, TensorRef)):
        raise MalformedTrace(f"{where}: not a copy between tensor views")
    if target.source != "buffer" or (source.shape, source.dtype) != (target.shape, target.dtype):
        raise MalformedTrace(f"{where}.target: not a buffer view of the source's shape and dtype")
    before_launch = _count(record["before_launch"], f"{where}.before_launch")
    if before_launch > launches:
        raise MalformedTrace(f"{where}.before_launch: {before_launch} is past the last of {launches} launches")
    return HostCopy(source, target, before_launch)


def _argument(raw: Any, where: str, sizes: dict[tuple[str, int], int]) -> Argument:
    if isinstance(raw, SCALAR_TYPES):
        return raw
    record = _dict(raw, where, {"source", "index", "dtype", "offset", "shape", "stride"})
    source, index, dtype = record["source"], record["index"], DTYPES.get(record["dtype"]) if isinstance(record["dtype"], str) else None
    if (source, index) not in sizes or type(index) is not int:
        raise MalformedTrace(f"{where}: no {source!r} number {index!r}")
    if dtype is None:
        raise MalformedTrace(f"{where}.dtype: {record['dtype']!r} is not a supported dtype")
    shape = tuple(_count(s, f"{where}.shape") for s in _list(record["shape"], f"{where}.shape", MAX_DIMENSIONS))
    stride = tuple(_count(s, f"{where}.stride") for s in _list(record["stride"], f"{where}.stride", MAX_DIMENSIONS))
    offset = _count(record["offset"], f"{where}.offset")
    if len(shape) != len(stride):
        raise MalformedTrace(f"{where}: {len(shape)} sizes but {len(stride)} strides")
    item = torch.empty(0, dtype=dtype).element_size()
    last = offset + sum((size - 1) * step for size, step in zip(shape, stride)) if all(shape) else offset - 1
    if (last + 1) * item > sizes[(source, index)]:
        raise MalformedTrace(f"{where}: the view reaches past its memory")
    return TensorRef(source, index, dtype, offset, shape, stride)


def _dict(raw: Any, where: str, keys: set[str] | None) -> dict[Any, Any]:
    if not isinstance(raw, dict) or (keys is not None and set(raw) != keys):
        raise MalformedTrace(f"{where}: not a record with fields {sorted(keys) if keys else 'names'}")
    return raw


def _list(raw: Any, where: str, limit: int) -> list[Any]:
    if not isinstance(raw, (list, tuple)) or len(raw) > limit:
        raise MalformedTrace(f"{where}: not a list of at most {limit} items")
    return list(raw)


def _count(raw: Any, where: str) -> int:
    if type(raw) is not int or not 0 <= raw < 1 << 40:
        raise MalformedTrace(f"{where}: {raw!r} is not a size")
    return raw

"""The trusted boundary's parts on their own: what the replay executes of a module, how an untrusted trace is
checked, and the fresh inputs a trace is replayed on. The attacks on it (arbitrary host code forging reports,
launches and no-op outcomes) are in the catalogue's second line (`test_hacks.py`)."""
from __future__ import annotations

import ast
from typing import Any

import pytest
import torch

from kernels.dataset import ALL_PROBLEMS, get_problem
from kernels.kernel_module import kernel_module
from kernels.trace import MalformedTrace, layout, parse_trial, tensor_record

MODULE = '''from __future__ import annotations
import os
import torch
import triton
import triton.language as tl
from triton import jit
from triton.runtime import driver
BLOCK = 128
WIDTH = tl.constexpr(64)
TABLE = os.listdir(".")
_HIDDEN = 1


@triton.jit
def kept_kernel(x_ptr, n, BLOCK_SIZE: tl.constexpr = 64):
    pass


@jit(do_not_specialize=["n"])
def kept_by_its_own_name(x_ptr, n):
    pass


@triton.jit(debug=print("side effect"))
def option_that_runs_code(x_ptr):
    pass


@triton.jit
def default_that_runs_code(x_ptr, n=os.getpid()):
    pass


@triton.jit
def annotation_that_runs_code(x_ptr: print("side effect")):
    pass


@torch.no_grad()
def other_decorator(x_ptr):
    pass


def entrypoint(x):
    return x


class Anything:
    pass


print("module level")
'''


def test_the_replay_executes_only_kernels_imports_and_literal_constants() -> None:
    kept = ast.unparse(kernel_module(ast.parse(MODULE)))
    for present in ("from __future__ import annotations", "import torch", "import triton\n", "import triton.language as tl",
                    "from triton import jit", "BLOCK = 128", "WIDTH = tl.constexpr(64)", "def kept_kernel", "def kept_by_its_own_name"):
        assert present in kept, present
    for absent in ("import os", "driver", "TABLE", "_HIDDEN", "option_that_runs_code", "default_that_runs_code",
                   "annotation_that_runs_code", "other_decorator", "def entrypoint", "class Anything", "print("):
        assert absent not in kept, absent


def test_kept_statements_keep_their_lines() -> None:
    tree = kernel_module(ast.parse(MODULE))
    kernel = next(node for node in tree.body if isinstance(node, ast.FunctionDef))
    assert MODULE.splitlines()[kernel.lineno - 1] == "def kept_kernel(x_ptr, n, BLOCK_SIZE: tl.constexpr = 64):"


INPUTS = (torch.zeros(4, 5), 0.5)


def _trace(**changes: Any) -> dict[str, Any]:
    x, out = INPUTS[0], torch.empty(4, 5)
    buffer = out.view(-1).view(torch.uint8).clone()
    trace = {
        "buffers": [buffer],
        "launches": [{"kernel": "k", "grid": [2], "args": [tensor_record("input", 0, x), tensor_record("buffer", 0, out), 20, 0.5, None],
                      "kwargs": {"BLOCK": 16}}],
        "copies": [{"source": tensor_record("input", 0, x), "target": tensor_record("buffer", 0, out), "before_launch": 0}],
        "result": tensor_record("buffer", 0, out),
    }
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node: Any = trace
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(leaf) if leaf.isdigit() else leaf] = value
    return trace


def test_a_well_formed_trace_is_read() -> None:
    trace = parse_trial(_trace(), INPUTS)
    (launch,) = trace.launches
    assert launch.kernel == "k" and launch.grid == (2,) and launch.args[2:] == (20, 0.5, None) and launch.kwargs == {"BLOCK": 16}
    assert trace.result.memory == ("buffer", 0) and launch.memories() == {("input", 0), ("buffer", 0)}
    (copy,) = trace.copies
    assert copy.source.memory == ("input", 0) and copy.target.memory == ("buffer", 0) and copy.before_launch == 0


@pytest.mark.parametrize(("changes", "field"), [
    ({"result__shape": [4, 6]}, "result: the view reaches past its memory"),
    ({"result__offset": 1}, "result: the view reaches past its memory"),
    ({"launches__0__args__0__index": 1}, "launches[0].args[0]: no 'input' number 1"),  # argument 1 is a float
    ({"launches__0__args__0__index": True}, "launches[0].args[0]: no 'input' number True"),
    ({"launches__0__args__1__dtype": "complex64"}, "launches[0].args[1].dtype"),
    ({"launches__0__args__1__stride": [5, -1]}, "launches[0].args[1].stride"),
    ({"launches__0__grid": [1 << 20, 1 << 20]}, "launches[0].grid"),
    ({"launches__0__grid": []}, "launches[0].grid"),
    ({"launches__0__kernel": "__class__"}, "launches[0].kernel"),
    ({"launches__0__args__3": "text"}, "launches[0].args[3]"),
    ({"launches__0__kwargs": {"not a name": 1}}, "launches[0].kwargs"),
    ({"buffers": [torch.zeros(80)]}, "buffers[0]: not a flat uint8 tensor"),
    ({"result": 3}, "result: not a tensor view"),
    ({"launches": "everything"}, "launches: not a list"),
    ({"copies__0__target": tensor_record("input", 0, INPUTS[0])}, "copies[0].target: not a buffer view"),
    ({"copies__0__source": tensor_record("input", 0, INPUTS[0].view(5, 4))}, "copies[0].target: not a buffer view of the source's shape"),
    ({"copies__0__before_launch": 2}, "copies[0].before_launch: 2 is past the last of 1 launches"),
    ({"copies__0__source": 1.5}, "copies[0]: not a copy between tensor views"),
    ({"copies": [{"source": tensor_record("input", 0, INPUTS[0]), "target": tensor_record("buffer", 0, torch.empty(4, 5)), "before_launch": 1},
                 {"source": tensor_record("input", 0, INPUTS[0]), "target": tensor_record("buffer", 0, torch.empty(4, 5)), "before_launch": 0}]},
     "copies: not in the order of the launches"),
])
def test_a_malformed_trace_is_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(MalformedTrace, match=field.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        parse_trial(_trace(**changes), INPUTS)


def test_a_trace_with_extra_or_missing_fields_is_refused() -> None:
    with pytest.raises(MalformedTrace, match="trace: not a record"):
        parse_trial({**_trace(), "outputs": [torch.zeros(4, 5)]}, INPUTS)
    with pytest.raises(MalformedTrace, match="trace: not a record"):
        parse_trial({"launches": [], "copies": [], "result": None}, INPUTS)


@pytest.mark.parametrize("problem", sorted(ALL_PROBLEMS))
def test_fresh_inputs_keep_the_layout_and_plain_arguments_but_not_the_values(problem: str) -> None:
    definition = get_problem(problem)
    for trial in range(2):
        seeded = definition.inputs(trial, 0)
        fresh = definition.fresh_inputs(definition.shape_of(trial), seeded)
        for old, new in zip(seeded, fresh):
            if isinstance(old, torch.Tensor):
                assert layout(old) == layout(new)
                assert not torch.equal(old, new), "fresh inputs equal the seeded ones"
            else:
                assert old == new

"""The grammar allow-list, on the syntax tree alone (no runner): honest code passes, everything else is named.

False rejections are measured on the data set's own solutions and on the honest set; both must be 0.
"""
from __future__ import annotations

import ast

import pytest

from kernels.allow_list import INPUT, META, argument_kinds, check
from kernels.dataset import ALL_PROBLEMS, get_problem

from .hack_catalogue import HACKS
from .honest import HONEST

HEADER = "import torch\nimport triton\nimport triton.language as tl\n\n\n"
KERNEL = '''@triton.jit
def relu_kernel(x_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    tl.store(out_ptr + offsets, tl.maximum(tl.load(x_ptr + offsets, mask=mask), 0.0), mask=mask)


'''


def findings(code: str, entrypoint: str = "relu", kinds: list[str] | None = None) -> list[str]:
    return [str(v) for v in check(ast.parse(code), entrypoint, kinds if kinds is not None else [INPUT])]


def relu_with(body: str) -> str:
    return HEADER + KERNEL + "def relu(x):\n" + body


def test_no_false_rejections_on_the_data_set_solutions() -> None:
    rejected = {name: findings(p.solution(), name, argument_kinds(p.inputs(0, 0))) for name, p in ALL_PROBLEMS.items()}
    assert {name: f for name, f in rejected.items() if f} == {}


def test_no_false_rejections_on_the_honest_set() -> None:
    assert len(HONEST) >= 25
    assert len({h.problem for h in HONEST}) >= 20
    rejected = {h.name: findings(h.code, h.problem, argument_kinds(get_problem(h.problem).inputs(0, 0))) for h in HONEST}
    assert {name: f for name, f in rejected.items() if f} == {}


def test_every_catalogued_hack_outside_the_grammar_is_rejected_statically() -> None:
    for hack in HACKS:
        found = findings(hack.code, hack.problem)
        assert bool(found) == ("not_allowed" in hack.expected), (hack.name, found)


def test_a_rejection_names_the_node_and_the_line() -> None:
    (finding,) = findings(relu_with("    out = torch.empty_like(x)\n    return x.clamp(min=0)\n"))
    assert finding.startswith("not_allowed: line 15: Call `x.clamp(min=0)`: this call is not in the allow-list"), finding


@pytest.mark.parametrize("body", [
    "    out = torch.empty_like(x)\n    n = x.numel()\n    relu_kernel[(triton.cdiv(n, 256),)](x, out, n, BLOCK_SIZE=256)\n    return out\n",
    "    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)\n    n = x.shape[0] * x.stride(0) if x.dim() else 1\n"
    "    relu_kernel[lambda meta: (triton.cdiv(n, meta['BLOCK_SIZE']),)](x, out, n, BLOCK_SIZE=128)\n    return out.view(x.shape)\n",
    "    out = torch.zeros_like(x)\n    for start in range(0, 3):\n        pass\n    assert x.is_contiguous()\n"
    "    relu_kernel[(1,)](x.contiguous(), out, x.numel(), BLOCK_SIZE=triton.next_power_of_2(x.numel()))\n    return out\n",
])
def test_metadata_arithmetic_allocation_and_launches_are_allowed(body: str) -> None:
    assert findings(relu_with(body)) == []


@pytest.mark.parametrize("body, why", [
    ("    out = torch.empty_like(x)\n    return out + 0\n", "got: allocated tensor"),
    ("    out = torch.empty_like(x)\n    k = len(x.tolist())\n    return out\n", "not in the allow-list"),
    ("    out = torch.empty_like(x)\n    g = lambda: out\n    return out\n", "a grid lambda takes exactly one parameter"),
    ("    out = torch.empty_like(x)\n    return x\n", "must return a tensor it allocated"),
    ("    out = torch.empty_like(x)\n    n = x.shape\n    n.__class__\n    return out\n", "a wrapper only assigns"),
    ("    out = torch.empty_like(x)\n    while True:\n        pass\n", "a wrapper only assigns"),
    ("    out = torch.empty_like(x, pin_memory=True)\n    return out\n", "takes only device, dtype as keywords"),
])
def test_anything_else_is_rejected_with_its_reason(body: str, why: str) -> None:
    found = findings(relu_with(body))
    assert found and why in found[0], found


def test_a_module_may_be_imported_again_under_the_same_name_only() -> None:
    body = "    out = torch.empty_like(x)\n    relu_kernel[(1,)](x, out, x.numel(), BLOCK_SIZE=16)\n    return out\n"
    assert findings("import triton.language\n" + relu_with(body)) == []
    assert any("bound twice" in f for f in findings("import math as tl\n" + relu_with(body)))


def test_plain_arguments_are_values_and_tensors_are_not() -> None:
    scaled = HEADER + KERNEL + "def relu(x, s):\n    out = torch.empty_like(x)\n    relu_kernel[(int(s * 2),)](x, out, 1, BLOCK_SIZE=16)\n    return out\n"
    assert findings(scaled, kinds=[INPUT, META]) == []
    assert findings(scaled, kinds=[INPUT, INPUT])


def test_helpers_are_checked_with_the_kinds_they_are_called_with() -> None:
    helper = "def blocks(n):\n    return triton.cdiv(n, 256)\n\n\n"
    good = HEADER + KERNEL + helper + "def relu(x):\n    out = torch.empty_like(x)\n    relu_kernel[(blocks(x.numel()),)](x, out, x.numel(), BLOCK_SIZE=256)\n    return out\n"
    bad = good.replace("blocks(x.numel())", "blocks(x)")
    assert findings(good) == []
    assert any("got: input tensor" in f for f in findings(bad))


def test_kernel_bodies_keep_to_the_triton_language() -> None:
    leak = KERNEL.replace("    mask = offsets", "    data = offsets.handle\n    mask = offsets")
    assert any(".handle is not an attribute" in f for f in findings(HEADER + leak))
    torch_in_kernel = KERNEL.replace("tl.maximum(", "torch.maximum(")
    assert any("torch is not a module a kernel may use" in f for f in findings(HEADER + torch_in_kernel))
    missing = KERNEL.replace("tl.maximum(", "tl.no_such_function(")
    assert findings(HEADER + missing + "def relu(x):\n    out = torch.empty_like(x)\n    return out\n") == []  # the compiler reports it


# Instances written after the allow-list, not in the catalogue: each must fail by construction.
FRESH_ATTACKS = {
    "module_alias_swapped": "import torch as tl\n" + HEADER.replace("import triton.language as tl\n", "") + KERNEL.replace("tl.", "tl.")
    + "def relu(x):\n    out = torch.empty_like(x)\n    relu_kernel[(1,)](x, out, x.numel(), BLOCK_SIZE=16)\n    return out\n",
    "triton_imported_as_math": HEADER.replace("import triton\n", "import triton as math\n")
    + "def relu(x):\n    out = torch.empty_like(x)\n    return math.runtime.driver\n",
    "parameter_shadows_a_module": relu_with("    out = torch.empty_like(x)\n    return out\n").replace("def relu(x):", "def relu(x, triton=1):"),
    "meta_dict_mutated": relu_with("    out = torch.empty_like(x)\n    relu_kernel[lambda meta: (meta.update(x=x) or 1,)](x, out, 1, BLOCK_SIZE=16)\n    return out\n"),
    "name_used_before_it_is_a_tensor": relu_with("    out = torch.empty_like(x)\n    for i in range(2):\n        n = y * 2\n        y = out\n    return out\n"),
    "loop_variable_rebinds_a_tensor": relu_with("    out = torch.empty_like(x)\n    for x in range(2):\n        pass\n    return out\n"),
    "grid_returns_a_tensor": relu_with("    out = torch.empty_like(x)\n    relu_kernel[lambda meta: (out,)](x, out, 1, BLOCK_SIZE=16)\n    return out\n"),
    "grid_called_on_the_host": relu_with("    out = torch.empty_like(x)\n    grid = lambda meta: (1,)\n    n = grid({})\n    return out\n"),
    "runtime_reached_from_a_kernel": HEADER + KERNEL.replace("    mask = offsets", "    d = triton.runtime.driver\n    mask = offsets"),
    "constexpr_class_attribute": HEADER + KERNEL.replace("    mask = offsets", "    v = tl.constexpr.value\n    mask = offsets"),
    "builder_keyword_in_a_kernel": HEADER + KERNEL.replace("tl.arange(0, BLOCK_SIZE)", "tl.arange(0, BLOCK_SIZE, _semantic=None)"),
    "kernel_object_passed_as_a_value": relu_with("    out = torch.empty_like(x)\n    k = relu_kernel\n    return out\n"),
    "storage_reached_through_a_view": relu_with("    out = torch.empty_like(x)\n    s = out.untyped_storage()\n    return out\n"),
}


@pytest.mark.parametrize("name", sorted(FRESH_ATTACKS))
def test_fresh_attacks_fail_by_construction(name: str) -> None:
    assert findings(FRESH_ATTACKS[name]), name

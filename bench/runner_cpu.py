"""CPU cost of grading the 36 data-set solutions, one after another, with the runner's settings.

    .venv/bin/python bench/runner_cpu.py        (from the repository root)

Counts the CPU seconds of this process and all its children (the evaluator's own work and every sandbox),
which the load of other jobs on a shared machine disturbs far less than wall-clock time.
"""
from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

# The runner's environment, set before torch and Triton are imported (see kernels/runner.py).
os.environ.pop("TRITON_INTERPRET", None)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernels.dataset import ALL_PROBLEMS, get_problem  # noqa: E402
from kernels.evaluate import Settings, evaluate  # noqa: E402


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    started_cpu, started_wall, correct = cpu_seconds(), time.monotonic(), 0
    for name in sorted(ALL_PROBLEMS):
        result = evaluate(name, f"<triton_code>\n{get_problem(name).solution()}\n</triton_code>", Settings())
        correct += result["rewards"]["correctness"]["score"] == 1.0
    spent = cpu_seconds() - started_cpu
    print(f"{correct}/{len(ALL_PROBLEMS)} correct; CPU {spent:.1f} s ({spent / len(ALL_PROBLEMS):.2f} s per candidate); "
          f"wall {time.monotonic() - started_wall:.1f} s")


if __name__ == "__main__":
    main()

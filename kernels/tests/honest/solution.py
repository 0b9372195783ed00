"""One honest solution: a complete candidate module for one problem."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Honest:
    name: str
    problem: str
    code: str


HEADER = "import torch\nimport triton\nimport triton.language as tl\n\n\n"

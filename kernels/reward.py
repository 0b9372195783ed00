"""One reward the runner reports: a score in [0, 1] and why."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reward:
    score: float
    reason: str

    def as_json(self) -> dict[str, Any]:
        # Six significant digits, not decimals: a runtime score far below parity is small but not zero.
        return {"score": float(f"{self.score:.6g}"), "reason": self.reason}

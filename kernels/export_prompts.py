"""Writes the Triton task's data sets, data/triton-train.jsonl and data/triton-test.jsonl.

Rows follow the other built-in tasks: `{system, prompt, problem, split, category}`; the `problem` field names
the kernel problem the runner grades against. Run from the repository root:
`.venv/bin/python -m kernels.export_prompts`. A test checks the committed files equal what this writes.
"""
from __future__ import annotations

import json
from pathlib import Path

from .dataset import problems

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def rows_text(split: str) -> str:
    lines = []
    for problem in problems(split):
        prompt = problem.prompt()
        row = {"system": prompt["system"], "prompt": prompt["user"], "problem": problem.name, "split": split,
               "category": problem.category}
        lines.append(json.dumps(row) + "\n")
    return "".join(lines)


def main() -> None:
    DATA_DIR.mkdir(exist_ok=True)
    for split in ("train", "test"):
        (DATA_DIR / f"triton-{split}.jsonl").write_text(rows_text(split))


if __name__ == "__main__":
    main()

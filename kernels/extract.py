"""Pulls the candidate's code out of a completion."""
from __future__ import annotations

import re

TRITON_CODE_BLOCK = re.compile(r"<triton_code>(.*?)</triton_code>", re.DOTALL)
MARKDOWN_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(.*?)\n\s*```\s*$", re.DOTALL)


def extract_triton_code(completion: str) -> str | None:
    """The last <triton_code> block, with a markdown fence inside it tolerated; None when there is none.

    The last block wins because models often quote the tags while reasoning before giving the answer.
    """
    blocks = TRITON_CODE_BLOCK.findall(completion)
    if not blocks:
        return None
    code = blocks[-1]
    fenced = MARKDOWN_FENCE.match(code)
    return (fenced.group(1) if fenced else code).strip("\n")

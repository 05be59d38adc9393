"""Code blocks of the README and the guides, so tests can run what the documents show.

A block is run when the line before its opening fence is ``<!-- run -->``; other blocks
(settings fragments, outlines, sample output) are only read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_MARKER = "<!-- run -->"
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class CodeBlock:
    language: str
    code: str
    line: int  # 1-based line of the opening fence
    run: bool

    def __str__(self) -> str:
        return f"{self.language} block at line {self.line}"


def code_blocks(path: Path) -> list[CodeBlock]:
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        run = i > 0 and lines[i - 1].strip() == RUN_MARKER
        blocks.append(CodeBlock(opening.group(1), "\n".join(lines[i + 1 : end]) + "\n", i + 1, run))
        i = end + 1
    return blocks


def runnable(path: Path, *languages: str) -> list[CodeBlock]:
    blocks = [b for b in code_blocks(path) if b.run]
    assert blocks, f"{path.name} has no {RUN_MARKER} blocks"
    wrong = [str(b) for b in blocks if b.language not in languages]
    assert not wrong, f"{path.name}: {RUN_MARKER} before a block this test cannot run: {wrong}"
    return blocks


def json_documents(text: str) -> list:
    """Every JSON object printed in ``text`` (curl prints them without a newline)."""
    decoder, found, i = json.JSONDecoder(), [], 0
    while (i := text.find("{", i)) != -1:
        try:
            document, end = decoder.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        found.append(document)
        i = end
    return found

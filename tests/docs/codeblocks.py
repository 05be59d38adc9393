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
FILE_MARKER = re.compile(r"^<!-- file: (\S+) -->$")
FENCE = re.compile(r"^```(\w*)\s*$")
#: The files of docs/host-developers.md's Wagtail recipe: run on a real Wagtail site by
#: tests/wagtail_site/test_recipe.py (nox's wagtail session), left out of the guide project.
WAGTAIL_RECIPE = ("home/", "test_home_webhooks.py")


@dataclass
class CodeBlock:
    language: str
    code: str
    line: int  # 1-based line of the opening fence
    run: bool
    file: str | None = None  # ``<!-- file: PATH -->``: the block is (part of) this file

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
        before = lines[i - 1].strip() if i else ""
        file = FILE_MARKER.match(before)
        code = "\n".join(lines[i + 1 : end]) + "\n"
        blocks.append(
            CodeBlock(opening.group(1), code, i + 1, before == RUN_MARKER, file and file.group(1))
        )
        i = end + 1
    return blocks


def runnable(path: Path, *languages: str) -> list[CodeBlock]:
    blocks = [b for b in code_blocks(path) if b.run]
    assert blocks, f"{path.name} has no {RUN_MARKER} blocks"
    wrong = [str(b) for b in blocks if b.language not in languages]
    assert not wrong, f"{path.name}: {RUN_MARKER} before a block this test cannot run: {wrong}"
    return blocks


def files(path: Path) -> dict[str, str]:
    """The files a guide's ``<!-- file: PATH -->`` blocks make, blocks of one file joined."""
    made: dict[str, str] = {}
    for block in code_blocks(path):
        if block.file:
            made[block.file] = made.get(block.file, "") + f"\n# {path.name}, {block}\n" + block.code
    assert made, f"{path.name} has no <!-- file: PATH --> blocks"
    return made


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

"""What a receiver answered, in a form every supported database stores.

A receiver may answer anything: NUL bytes (PostgreSQL refuses them in text and JSON),
invalid UTF-8, an image, a gzip of zeros, control characters in header values. The
attempt log keeps readable text as it came, escapes the odd unprintable character, and
replaces a binary answer by a note of its size, so recording an outcome never fails
because of what the receiver sent.
"""

from __future__ import annotations

import codecs
import re

#: Characters no database column should get from a stranger: NUL and the other C0/C1
#: controls except tab, newline and carriage return, plus lone surrogates.
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
#: Share of unprintable characters above which an answer is treated as binary.
_BINARY_SHARE = 0.1
_BINARY_TYPES = ("image/", "audio/", "video/", "application/octet-stream", "application/zip")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value, *, limit: int | None = None) -> str:
    """``value`` as text with unsafe characters escaped (``\\x00``), at most ``limit`` long."""
    text = value if isinstance(value, str) else str(value)
    if not (text.isascii() and text.isprintable()):  # printable ASCII has nothing to escape
        text = _UNSAFE.sub(_escape, text)
    return text if limit is None else text[:limit]


def binary_note(size: int, content_type: str = "") -> str:
    kind = f" {content_type}" if content_type else ""
    return f"[binary{kind}, {size} bytes]"


def body_text(data: bytes, *, encoding: str | None, content_type: str = "") -> str:
    """A receiver's answer as stored: its text, escaped where needed, or a binary note."""
    if not data:
        return ""
    base_type = content_type.split(";", 1)[0].strip().lower()
    if base_type.startswith(_BINARY_TYPES):
        return binary_note(len(data), base_type)
    try:
        codec = codecs.lookup(encoding or "utf-8").name
    except LookupError:
        codec = "utf-8"
    text = data.decode(codec, errors="replace")
    unprintable = len(_UNSAFE.findall(text)) + text.count("\ufffd")
    if unprintable > _BINARY_SHARE * len(text):
        return binary_note(len(data), base_type)
    return safe_text(text)


def headers_dict(headers) -> dict[str, str]:
    """Response headers as a JSON object every database accepts (names and values escaped)."""
    safe: dict[str, str] = {}
    for name, value in headers.items():
        safe[safe_text(name, limit=200)] = safe_text(value, limit=2000)
    return safe

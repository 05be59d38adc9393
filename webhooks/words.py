"""How counts and durations are said on every page: "1 webhook", "24 hours", never "24.0"."""

from __future__ import annotations


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def duration_words(seconds: float) -> str:
    """ "24 hours", "90 minutes", "1 day": never "24.0 hours"."""
    seconds = int(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            return plural(seconds // size, unit, unit + "s")
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return plural(seconds, "second", "seconds")


def rate_limit_words(rate_limit) -> str:
    """ "at most 10 messages per second", or "no limit"."""
    if not rate_limit:
        return "no limit"
    return f"at most {plural(rate_limit, 'message', 'messages')} per second"

"""Time-ordered ids for the rows written with every event: events and deliveries.

A random UUID (version 4) puts each new row's index entries on a random page of every
index keyed by it: the events' and deliveries' primary keys, ``webhooks_one_delivery``
(event first), the attempts' ``(delivery, number)``. Once those indexes outgrow the
database's cache (at 10M attempts they are gigabytes), nearly every insert reads pages
in and writes others out: PostgreSQL's CPU per delivery doubled from empty tables to
10M (docs/benchmarks.md, "Again on a quiet machine"). A version 7 UUID (RFC 9562) starts
with the time in milliseconds, so new rows share the indexes' last pages whatever the
table's size. The other 74 bits are random: ids stay unguessable, and unique across
processes and machines without coordination. Python 3.14 has ``uuid.uuid7``; 3.11-3.13
do not, hence this.
"""

from __future__ import annotations

import os
import time
import uuid


def uuid7(millis: int | None = None) -> uuid.UUID:
    """A version 7 UUID: 48 bits of Unix time in milliseconds (now, or ``millis``: the
    data generator dates its rows in the past), version, 12 random bits, variant, 62
    random bits."""
    if millis is None:
        millis = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10), "big")
    rand_a, rand_b = random >> 68, random & ((1 << 62) - 1)
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)

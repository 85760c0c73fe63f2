"""Shared pieces of the fuzz tests: byte mutations and a bound on what a decode allocates."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

from hypothesis import strategies as st

# (kind, position, value): position is taken modulo the length of what is mutated.
Edit = tuple[str, int, int]

edits = st.lists(
    st.tuples(
        st.sampled_from(
            ["set", "flip", "insert", "delete", "truncate", "extend", "lie16", "lie32"]
        ),
        st.integers(0, 1 << 20),
        st.integers(0, 0xFFFFFFFF),
    ),
    min_size=1,
    max_size=5,
)


def mutate(data: bytes, changes: list[Edit]) -> bytes:
    """``data`` with every edit applied: a byte set or bit-flipped, bytes inserted or
    deleted, the end cut off or extended, or a 2- or 4-byte big-endian length field
    overwritten with a lie (huge, zero, or off by a little)."""
    out = bytearray(data)
    for kind, position, value in changes:
        at = position % (len(out) + 1)
        if kind == "set" and at < len(out):
            out[at] = value & 0xFF
        elif kind == "flip" and at < len(out):
            out[at] ^= 1 << (value & 7)
        elif kind == "insert":
            out[at:at] = value.to_bytes(4, "big")[: 1 + value % 4]
        elif kind == "delete":
            del out[at : at + 1 + value % 16]
        elif kind == "truncate":
            del out[at:]
        elif kind == "extend":
            out += bytes([value & 0xFF]) * (1 + (value >> 8) % 64)
        elif kind in ("lie16", "lie32"):
            size = 2 if kind == "lie16" else 4
            lies = (value, (1 << (8 * size)) - 1, 0, at + 1, at - 1)
            lie = lies[value % len(lies)] % (1 << (8 * size))
            out[at : at + size] = lie.to_bytes(size, "big")
    return bytes(out)


def peak_allocation(function: Callable[[], object], expected: type[Exception]) -> int:
    """Bytes allocated at the peak while ``function`` runs (raising ``expected`` or not)."""
    tracemalloc.start()
    try:
        function()
    except expected:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def allocation_bound(input_length: int) -> int:
    """What decoding ``input_length`` bytes may take: a Python object per few input bytes
    at most, never anything sized from a length field (which may claim up to 4 GiB)."""
    return 64 * input_length + (256 << 10)

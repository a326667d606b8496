"""Byte ranges of file locks, as POSIX fcntl locks count them (shared by the MDS's lock
table, the client's record of what it holds and the NFS head).

A range is [start, end) with `end` None for "to the end of the file" (fcntl's l_len 0,
NFSv4's length of all ones). Two locks conflict when their ranges overlap and one of them
is a write lock; an unlock or a new lock of the same owner cuts what it covers out of the
owner's older locks, splitting one in two where it falls in the middle.
"""

from __future__ import annotations

READ, WRITE = "read", "write"
TYPES = (READ, WRITE)


def end_of(start: int, length: int) -> int | None:
    """fcntl's convention: a length of 0 reaches the end of the file."""
    if type(start) is not int or type(length) is not int or start < 0 or length < 0:
        raise ValueError(f"bad range start={start} length={length}")
    return None if length == 0 else start + length


def length_of(start: int, end: int | None) -> int:
    return 0 if end is None else end - start


def overlaps(start1: int, end1: int | None, start2: int, end2: int | None) -> bool:
    return (end2 is None or start1 < end2) and (end1 is None or start2 < end1)


def conflicting_types(type1: str, type2: str) -> bool:
    return WRITE in (type1, type2)


def cut(start: int, end: int | None, cstart: int, cend: int | None) -> list[tuple[int, int | None]]:
    """What is left of [start, end) once [cstart, cend) is taken out (0, 1 or 2 pieces)."""
    if not overlaps(start, end, cstart, cend):
        return [(start, end)]
    left = [(start, cstart)] if start < cstart else []
    right = [(cend, end)] if cend is not None and (end is None or cend < end) else []
    return left + right

"""Frames on every connection: a 4-byte big-endian length, then one msgpack map (DESIGN §2.3).

Sans-IO: `encode` makes bytes, `FrameDecoder` turns received bytes into dicts. The size cap is
checked on the header, before a byte of the body is buffered.
"""

from __future__ import annotations

import struct

import msgpack

HEADER = struct.Struct(">I")
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024  # ms_max_message_size


class FrameError(Exception):
    """The peer sent something that is not a valid frame; the connection must be closed."""


def encode(msg: dict) -> bytes:
    return frame(msgpack.packb(msg, use_bin_type=True))


def frame(body: bytes) -> bytes:
    return HEADER.pack(len(body)) + body


class FrameDecoder:
    def __init__(self, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._need: int | None = None

    def feed(self, data: bytes) -> None:
        self._buf += data
        if self._need is None and len(self._buf) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buf)
            if size > self.max_size:
                raise FrameError(f"frame of {size} bytes exceeds the {self.max_size}-byte cap")

    @property
    def pending(self) -> int:
        """Bytes buffered that do not yet make a whole frame (non-zero at EOF: truncated)."""
        return len(self._buf)

    def next(self) -> dict | None:
        """Return the next whole frame, or None if more bytes are needed."""
        body = self.next_raw()
        return None if body is None else decode_body(body)

    def next_raw(self) -> bytes | None:
        """The next whole frame's body, undecoded (a signed frame is checked first)."""
        if len(self._buf) < HEADER.size:
            return None
        (size,) = HEADER.unpack_from(self._buf)
        if size > self.max_size:
            raise FrameError(f"frame of {size} bytes exceeds the {self.max_size}-byte cap")
        if len(self._buf) < HEADER.size + size:
            return None
        body = bytes(self._buf[HEADER.size : HEADER.size + size])
        del self._buf[: HEADER.size + size]
        return body


def decode_body(body: bytes) -> dict:
    try:
        msg = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception as e:  # msgpack raises several unrelated types
        raise FrameError(f"undecodable frame: {e.__class__.__name__}: {e}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise FrameError("frame is not a map with a string 'type'")
    return msg

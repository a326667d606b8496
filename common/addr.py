"""Monitor and daemon addresses as the conf and the maps write them (no I/O)."""

from __future__ import annotations


def parse_hostport(text: str, default_port: int = 6789) -> tuple[str, int]:
    """"127.0.0.1:6789", "[v2:127.0.0.1:3300/0,v1:...]" or "host" -> (host, port)."""
    text = text.strip().strip("[]").split(",")[0]
    for prefix in ("v2:", "v1:"):
        text = text.removeprefix(prefix)
    text = text.split("/")[0]
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    return host, int(port)

"""`python -m vip.check HOST PORT`: exit 0 if HOST:PORT accepts a TCP connection within a
second, 1 otherwise. The track script that vstart's ingress runs against its local head."""

from __future__ import annotations

import socket
import sys


def main(argv: list[str]) -> int:
    try:
        host, port = argv[0], int(argv[1])
    except (IndexError, ValueError):
        print("usage: python -m vip.check HOST PORT", file=sys.stderr)
        return 2
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return 0
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

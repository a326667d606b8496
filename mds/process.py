"""What the MDS does as a process: notice stop signals (B10), re-execute itself to respawn
(B8/B9), and open its admin socket."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys

import structlog
import trio

log = structlog.get_logger("mds")


# SIGTERM/SIGINT seen by this process image (see watch_termination_signals).
_termination_seen: list[int] = []


def watch_termination_signals() -> None:
    """Note SIGTERM/SIGINT the moment Python sees them, then call the handler already in place
    (trio's signal receiver, which acts on it a few scheduler steps later). A respawn decided
    in between (e.g. a daemon removed while it was stopped gets `kill -TERM; kill -CONT`)
    must not re-execute the process: the signal would die with the old image (B10)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        inner = signal.getsignal(signum)
        if not callable(inner) or getattr(inner, "mdsemu_watch", False):
            continue

        def handler(sig, frame, inner=inner):
            _termination_seen.append(sig)
            inner(sig, frame)

        handler.mdsemu_watch = True
        signal.signal(signum, handler)


def exec_respawn(reason: str) -> None:  # pragma: no cover - replaces the process image
    """B8/B9: re-execute this very process (same pid, new gid), as ceph-mds does."""
    log.warning("respawn!", reason=reason)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)


def admin_socket_listener(path: str):
    """A listener on the unix socket `path` (replacing a stale file), or None: no path, or
    the directory cannot be written (logged; the daemon runs without one)."""
    if not path:
        return None
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            log.warning("admin socket in use by another process; none for us", path=path)
            return None
        except OSError:
            pass  # stale: the daemon that made it is gone
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock.bind(path)
        sock.listen(16)
    except OSError as e:
        sock.close()
        log.info("no admin socket", path=path, error=e.strerror or str(e))
        return None
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


def signalled() -> bool:
    """Has this process image seen SIGTERM/SIGINT?"""
    return bool(_termination_seen)

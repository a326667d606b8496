"""A monitor session for tools: `AdminClient` is the MonClient (`common/monclient.py`) used
without reconnecting: run commands, and receive pushed maps and cluster-log lines in
`admin.pushes`, which ends when the monitor goes away.

Use as `async with AdminClient.open(mon_host, ...) as admin:`. `open` retries an unreachable
monitor every `hunt_interval` until `timeout` has passed, then raises MonUnreachable with a
one-line reason.
"""

from __future__ import annotations

from common.monclient import MonClient, MonUnreachable, hunt

AdminClient = MonClient

__all__ = ["AdminClient", "MonUnreachable", "hunt"]

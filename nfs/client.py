"""A client of an mdsemu NFS head (nfs/daemon.py), for tools and tests.

    async with NFSClient.connect("127.0.0.1:2049") as c:
        await c.mount("client-1")            # exchange_id + create_session
        await c.call("reclaim_complete")
        sid = (await c.call("open", path="/f", create=True))["stateid"]

`call` returns the result map or raises NFS4Error (its `name`, `status`, `denied`); a lost
connection raises ConnectionClosed.
"""

from __future__ import annotations

import contextlib
import itertools

import trio

from common import messages as m
from common.net import Connection, parse_hostport
from nfs.nfs4 import NAMES, NFS4Error


class NFSClient:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.session = 0
        self.clientid = 0
        self._tids = itertools.count(1)
        self._lock = trio.Lock()

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, server: str, timeout: float = 10.0):
        host, port = parse_hostport(server, 2049)
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(host, port)
        conn = Connection(stream)
        try:
            yield cls(conn)
        finally:
            await conn.aclose()

    async def call(self, op: str, **args) -> dict:
        async with self._lock:  # one request at a time: replies come in order
            tid = next(self._tids)
            await self.conn.send(m.NFSRequest(tid=tid, op=op, args=args, session=self.session))
            reply = await self.conn.recv()
        if reply.status:
            e = NFS4Error(reply.error or NAMES.get(reply.status, "NFS4ERR_SERVERFAULT"),
                          reply.result.get("message", ""), reply.result.get("denied"))
            raise e
        return reply.result

    async def mount(self, owner: str, verifier: str = "1") -> int:
        self.clientid = (await self.call("exchange_id", owner=owner, verifier=verifier))[
            "clientid"]
        self.session = (await self.call("create_session", clientid=self.clientid))["sessionid"]
        return self.session

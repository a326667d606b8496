"""librados for tools and gateways: a monitor session that follows the OSDMap (pools by name,
where the osd is), and a session with the osd; `IoCtx` is a pool and namespace bound to it.

Use as `async with Rados.connect(config) as rados:`, then `rados.ioctx("pool", "ns")`.
Errors: RadosError with a positive errno (`code`), as librados returns -errno: ENOENT for a
pool that does not exist, ETIMEDOUT when no monitor or osd answers within `timeout`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random

import trio

from client.admin import AdminClient, MonUnreachable
from common import config as cfg
from common import messages as m
from common.auth import hello_key
from common.osdmap import OSDMap
from osd.objecter import OSDClient, OSDError


class RadosError(Exception):
    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message or os.strerror(code))
        self.code = code


def strerror(code: int) -> str:
    """Ceph's cpp_strerror: "(2) No such file or directory"."""
    return f"({code}) {os.strerror(code)}"


def _lone(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class Rados:
    def __init__(self, admin: AdminClient, entity: str) -> None:
        self.admin = admin
        self.entity = entity
        self.osdmap = OSDMap(epoch=0)
        self.osd: OSDClient | None = None
        self._changed = trio.Event()

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, config: cfg.Config, entity: str = "client.admin",
                      timeout: float = 10.0):
        try:
            auth = hello_key(config, entity)
            admin_cm = AdminClient.open(config.get("mon_host"), entity, auth,
                                        timeout, config.get("mon_client_hunt_interval"))
            async with admin_cm as admin, trio.open_nursery() as nursery:
                rados = cls(admin, entity)
                await admin.subscribe("osdmap")
                nursery.start_soon(rados._follow)
                addr = await rados._osd_addr(timeout)
                ip = admin.conn.stream.socket.getsockname()[0]
                my_addr = f"{ip}:0/{random.randrange(1, 2**31)}"
                try:
                    async with OSDClient.open(addr, entity, my_addr, auth=auth) as osd:
                        rados.osd = osd
                        yield rados
                except OSDError as e:
                    raise RadosError(e.code, str(e)) from None
                finally:
                    nursery.cancel_scope.cancel()
        except MonUnreachable as e:
            raise RadosError(errno.ETIMEDOUT, str(e)) from None
        except BaseExceptionGroup as group:  # what the nurseries wrapped: hand back the error
            leaf = _lone(group)
            if leaf is group:
                raise
            if isinstance(leaf, MonUnreachable):
                raise RadosError(errno.ETIMEDOUT, str(leaf)) from None
            raise leaf from None

    async def _follow(self) -> None:
        async for msg in self.admin.pushes:
            if isinstance(msg, m.OSDMapMsg):
                osdmap = OSDMap.from_wire(msg.osdmap)
                if osdmap.epoch > self.osdmap.epoch:
                    self.osdmap = osdmap
                    self._changed.set()
                    self._changed = trio.Event()

    async def wait_for_map(self, predicate, timeout: float) -> None:
        with trio.move_on_after(timeout):
            while not predicate(self.osdmap):
                await self._changed.wait()
            return
        raise RadosError(errno.ETIMEDOUT, "timed out waiting for the osdmap")

    async def _osd_addr(self, timeout: float) -> str:
        await self.wait_for_map(lambda o: o.epoch > 0 and o.osd_addrs, timeout)
        return self.osdmap.osd_addrs[min(self.osdmap.osd_addrs)]

    # -- pools (the monitor's)
    def pool_list(self) -> list[str]:
        return [p.name for p in sorted(self.osdmap.pools.values(), key=lambda p: p.id)]

    def pool_lookup(self, name: str) -> int:
        pool = self.osdmap.pool_by_name(name)
        if pool is None:
            raise RadosError(errno.ENOENT, f"pool '{name}' does not exist")
        return pool.id

    async def mon_command(self, *words: str) -> tuple[int, str, str]:
        try:
            return await self.admin.command(list(words))
        except MonUnreachable as e:
            raise RadosError(errno.ENOTCONN, str(e)) from None

    async def pool_create(self, name: str, timeout: float = 10.0) -> None:
        """rados_pool_create: EEXIST if the pool is there already."""
        if self.osdmap.pool_by_name(name) is not None:
            raise RadosError(errno.EEXIST, f"pool '{name}' exists")
        rc, outs, _ = await self.mon_command("osd", "pool", "create", name)
        if rc < 0:
            raise RadosError(-rc, outs)
        await self.wait_for_map(lambda o: o.pool_by_name(name) is not None, timeout)

    def ioctx(self, pool: str, ns: str = "") -> IoCtx:
        return IoCtx(self, self.pool_lookup(pool), pool, ns)


class IoCtx:
    """One pool and namespace: the calls of a librados IoCtx, raising RadosError."""

    def __init__(self, rados: Rados, pool_id: int, pool: str, ns: str) -> None:
        self.rados = rados
        self.pool_id = pool_id
        self.pool = pool
        self.ns = ns

    async def _do(self, name: str, *args, **kwargs):
        try:
            return await getattr(self.rados.osd, name)(self.pool_id, *args, **kwargs)
        except OSDError as e:
            raise RadosError(e.code, str(e)) from None

    async def read(self, oid: str) -> bytes:
        return await self._do("read", oid, ns=self.ns)

    async def write_full(self, oid: str, data: bytes) -> None:
        await self._do("write_full", oid, data, ns=self.ns)

    async def remove(self, oid: str) -> None:
        await self._do("remove", oid, ns=self.ns)

    async def stat(self, oid: str):
        return await self._do("stat", oid, ns=self.ns)

    async def list(self) -> list[str]:
        return await self._do("list", "", ns=self.ns)

    async def list_all(self) -> list[tuple[str, str]]:
        return await self._do("list_all")

    async def omap_get(self, oid: str, keys: list[str] | None = None) -> dict[str, bytes]:
        return await self._do("omap_get", oid, keys, ns=self.ns)

    async def omap_set(self, oid: str, values: dict[str, bytes]) -> None:
        await self._do("omap_set", oid, values, ns=self.ns)

    async def operate(self, oid: str, ops: list) -> m.OSDOpReply:
        return await self._do("operate", oid, ops, ns=self.ns)

    async def watch(self, oid: str, callback, timeout: float = 30.0) -> int:
        return await self._do("watch", oid, callback, ns=self.ns, timeout=timeout)

    async def notify(self, oid: str, payload: bytes = b"", timeout: float = 10.0):
        return await self._do("notify", oid, payload, timeout=timeout, ns=self.ns)

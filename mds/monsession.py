"""The daemon's link to the monitors (`MonSession`, a part of MDSDaemon): hunting for a monitor
with backoff (T3), the subscriptions, the beacons (B2-B5) and what the monitors send. The
decisions are in `mds.beacon` (lagginess) and `mds.lifecycle` (backoff, ping timeout, B5 holds,
null maps); this is the trio layer.

Its interface to the daemon: `run()` (the session, until cancelled), `wake()` (B3: a beacon
now), `send_beacon()`, `send(msg)` and `command(args)` (quietly dropped without a session),
`laggy(now)` and `unlaggy` (an event set when an ack ends a laggy period). It calls back
`mds.connected`, `mds.beacon_msg`, `mds.on_fsmap`, `mds.on_osdmap`, `mds.config_changed`,
`mds.removed` and `mds.fatal`. Connecting and receiving are apart from the beacons, so that
a MonClient shared with the osd and the tools can take them over.
"""

from __future__ import annotations

import contextlib
import functools

import structlog
import trio

from common import messages as m
from common.auth import hello_key
from common.fsmap import FSMap
from common.net import ConnectionClosed, HandshakeError, ProtocolError, connect, parse_hostport
from common.osdmap import OSDMap
from mds import lifecycle
from mds.beacon import BeaconState

log = structlog.get_logger("mds")


class MonSession:
    def __init__(self, mds) -> None:
        self.mds = mds
        self.config = mds.config
        self.beacon = BeaconState(self.config.get("mds_beacon_grace"))
        self.conn = None
        self.unlaggy = trio.Event()  # set (and replaced) on each ack that ends laggy
        self._wake = trio.Event()  # B3: send a beacon now
        self._deferred_map: FSMap | None = None
        self._tid = 0

    def wake(self) -> None:
        self._wake.set()

    def laggy(self, now: float) -> bool:
        return self.beacon.laggy(now)

    async def send(self, msg) -> None:
        conn = self.conn
        if conn is not None:
            with contextlib.suppress(ConnectionClosed):
                await conn.send(msg)

    async def command(self, args: list[str]) -> None:
        self._tid += 1
        await self.send(m.Command(tid=self._tid, args=args, who=f"mds.{self.mds.name}"))

    # -- the session (reconnects with backoff, keeps its gid)
    async def run(self) -> None:
        c = self.config
        hosts = [parse_hostport(h) for h in c.get("mon_host").split(",") if h.strip()]
        backoff = lifecycle.mon_backoff(c.get("mon_client_hunt_interval"),
                                        c.get("mds_beacon_grace"))
        attempt = 0
        while True:
            host, port = hosts[attempt % len(hosts)]
            attempt += 1
            try:
                conn, ok = await connect(host, port, f"mds.{self.mds.name}", self.mds.gid,
                                         auth=hello_key(c), max_size=c.get("ms_max_message_size"))
            except (OSError, HandshakeError) as e:
                delay = backoff.next()
                log.warning("cannot reach the monitor, retrying", mon=f"{host}:{port}",
                            error=str(e), retry_in=delay)
                await trio.sleep(delay)
                continue
            backoff.reset()
            self.mds.connected(ok.global_id, ok.fsid, f"{host}:{port}")
            self.conn = conn
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guard, self._beacon_loop, nursery.cancel_scope)
                    await conn.send(m.Subscribe(what=["fsmap", "osdmap", "config"]))
                    await self._guard(functools.partial(self._receive_loop, conn),
                                      nursery.cancel_scope)
            finally:
                self.conn = None
                await conn.aclose()
            await trio.sleep(c.get("mon_client_hunt_interval"))

    async def _guard(self, fn, scope: trio.CancelScope) -> None:
        """Run one half of the mon session; a network fault ends both halves, quietly."""
        try:
            await fn()
        except (ConnectionClosed, ProtocolError) as e:
            log.warning("lost the monitor connection", error=str(e))
        scope.cancel()

    async def _beacon_loop(self) -> None:
        """B2/B3: a beacon every mds_beacon_interval, or at once when the wanted state changes."""
        started = trio.current_time()
        while True:
            await self.send_beacon()
            with trio.move_on_after(self.config.get("mds_beacon_interval")):
                await self._wake.wait()
            self._wake = trio.Event()
            now = trio.current_time()
            self.beacon.grace = self.config.get("mds_beacon_grace")
            if self.beacon.laggy(now) and self.beacon.last_acked_stamp is not None:
                log.warning(f"MDS connection to Monitors appears to be laggy; "
                            f"{self.beacon.since_acked(now):.3f}s since last acked beacon")
            silent = lifecycle.ping_silence(now, started, self.beacon.last_acked_stamp,
                                            self.config.get("mon_client_ping_timeout"))
            if silent is not None:  # hunt for a monitor again, as Ceph's MonClient does
                raise ConnectionClosed(f"no beacon acked for {silent:.1f}s; "
                                       f"hunting for a new monitor session")

    async def send_beacon(self) -> None:
        conn = self.conn
        if conn is None:
            return
        seq = self.beacon.sent(trio.current_time())
        await conn.send(self.mds.beacon_msg(seq))

    async def _receive_loop(self, conn) -> None:
        while True:
            msg = await conn.recv()
            if isinstance(msg, m.BeaconAck):
                self._on_ack(msg)
            elif isinstance(msg, m.FSMapMsg):
                fsmap = FSMap.from_wire(msg.fsmap)
                if lifecycle.hold_map(self.mds.state, self.beacon.laggy(trio.current_time())):
                    log.info("laggy, deferring mdsmap", epoch=fsmap.epoch)
                    self._deferred_map = fsmap
                else:
                    self.mds.on_fsmap(fsmap)
            elif isinstance(msg, m.ConfigMsg):
                self.mds.config_changed(self.config.set_runtime(msg.values))
            elif isinstance(msg, m.OSDMapMsg):
                self.mds.on_osdmap(OSDMap.from_wire(msg.osdmap))
            elif isinstance(msg, m.Error):
                raise ProtocolError(f"monitor said: {msg.message}")

    def _on_ack(self, ack: m.BeaconAck) -> None:
        if ack.null_map:
            if lifecycle.on_null_map_ack(self.mds.stopping) == lifecycle.END:
                self.mds.removed()
                return
            self.mds.fatal(lifecycle.REMOVED)
        now = trio.current_time()
        if self.beacon.acked(ack.seq, now):
            log.info(" MDS is no longer laggy")
        if not self.beacon.laggy(now):
            self.unlaggy.set()
            self.unlaggy = trio.Event()
        if self._deferred_map is not None and not self.beacon.laggy(now):
            fsmap, self._deferred_map = self._deferred_map, None
            self.mds.on_fsmap(fsmap)

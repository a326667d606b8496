"""The daemon's link to the monitors (`MonSession`, a part of MDSDaemon): the beacons (B2-B5)
and what the monitors send, over the shared MonClient (`common.monclient`), which hunts for a
monitor with backoff (T3), keeps our gid across sessions and sends the subscriptions again.
The decisions are in `mds.beacon` (lagginess) and `mds.lifecycle` (backoff cap, B5 holds, null
maps); this is the trio layer. Liveness is our beacon acks only: a monitor that answers
nothing else for `mon_client_ping_timeout` is left (the MonClient hunts again).

Its interface to the daemon: `run()` (the session, until cancelled), `wake()` (B3: a beacon
now), `send_beacon()`, `send(msg)` and `command(args)` (quietly dropped without a session),
`laggy(now)` and `unlaggy` (an event set when an ack ends a laggy period). It calls back
`mds.connected`, `mds.beacon_msg`, `mds.on_mdsmap`, `mds.on_osdmap`, `mds.config_changed`,
`mds.removed` and `mds.fatal`.
"""

from __future__ import annotations

import math

import structlog
import trio

from common import messages as m
from common.mdsmap import MDSMap
from common.monclient import MonClient
from common.net import ProtocolError
from common.osdmap import OSDMap
from mds import lifecycle
from mds.beacon import BeaconState

log = structlog.get_logger("mds")


class MonSession:
    def __init__(self, mds) -> None:
        self.mds = mds
        self.config = mds.config
        self.beacon = BeaconState(self.config.get("mds_beacon_grace"))
        self.monc: MonClient | None = None
        self.unlaggy = trio.Event()  # set (and replaced) on each ack that ends laggy
        self._wake = trio.Event()  # B3: send a beacon now
        self._deferred_map: MDSMap | None = None
        self._renew_subs = False  # the beacon loop subscribes again (a map went missing)
        self._tid = 0

    def wake(self) -> None:
        self._wake.set()

    def laggy(self, now: float) -> bool:
        return self.beacon.laggy(now)

    @property
    def conn(self):
        """The current monitor session's connection (None while hunting)."""
        return self.monc.conn if self.monc is not None else None

    async def send(self, msg) -> None:
        if self.monc is not None:
            await self.monc.send(msg)

    async def command(self, args: list[str]) -> None:
        self._tid += 1
        await self.send(m.Command(tid=self._tid, args=args, who=f"mds.{self.mds.name}"))

    # -- the session: the shared MonClient hunts (T3 backoff), keeps our gid, resubscribes
    async def run(self) -> None:
        c = self.config
        hunt = c.get("mon_client_hunt_interval")
        async with MonClient.open(
                c.get("mon_host"), f"mds.{self.mds.name}", auth=self.mds.auth, timeout=math.inf,
                backoff=lifecycle.mon_backoff(hunt, c.get("mds_beacon_grace")), reconnect=True,
                ping_timeout=c.get("mon_client_ping_timeout"), max_size=c.get(
                    "ms_max_message_size"), log=log, on_push=self._on_push, keep_gid=True,
                heard_on_receive=False, on_session=self._on_session,
                session_task=self._beacon_loop) as monc:
            self.monc = monc
            # B7: Ceph's MDS subscribes to `mdsmap`: its fs's map, a standby's null map
            await monc.subscribe("mdsmap", "osdmap", "config")
            await trio.sleep_forever()

    def _on_session(self, hello: m.HelloOk, peer: str) -> None:
        self.mds.connected(hello.global_id, hello.fsid, peer)

    async def _beacon_loop(self) -> None:
        """B2/B3: a beacon every mds_beacon_interval, or at once when the wanted state changes;
        it runs for one session (the MonClient ends it with the session)."""
        while True:
            await self.send_beacon()
            with trio.move_on_after(self.config.get("mds_beacon_interval")):
                await self._wake.wait()
            self._wake = trio.Event()
            if self._renew_subs and self.monc is not None:
                self._renew_subs = False
                await self.monc.renew_subs()
            now = trio.current_time()
            self.beacon.grace = self.config.get("mds_beacon_grace")
            if self.beacon.laggy(now) and self.beacon.last_acked_stamp is not None:
                log.warning(f"MDS connection to Monitors appears to be laggy; "
                            f"{self.beacon.since_acked(now):.3f}s since last acked beacon")

    async def send_beacon(self) -> None:
        conn = self.conn
        if conn is None:
            return
        seq = self.beacon.sent(trio.current_time())
        await conn.send(self.mds.beacon_msg(seq))

    def _on_push(self, msg) -> None:
        """What the monitor sends, other than replies to the MonClient's own commands."""
        if isinstance(msg, m.BeaconAck):
            self._on_ack(msg)
        elif isinstance(msg, m.MDSMapMsg):
            mdsmap = MDSMap.from_wire(msg.mdsmap)
            if lifecycle.hold_map(self.mds.state, self.beacon.laggy(trio.current_time())):
                log.info("laggy, deferring mdsmap", epoch=mdsmap.epoch)
                self._deferred_map = mdsmap
            else:
                self.mds.on_mdsmap(mdsmap)
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
        if self.beacon.last_acked_stamp is not None and self.monc is not None:
            self.monc.heard(self.beacon.last_acked_stamp)  # liveness: acked beacons only
        if not self.beacon.laggy(now):
            self.unlaggy.set()
            self.unlaggy = trio.Event()
        if self._deferred_map is not None and not self.beacon.laggy(now):
            mdsmap, self._deferred_map = self._deferred_map, None
            self.mds.on_mdsmap(mdsmap)
        have = max(self.mds.sm.epoch if self.mds.sm is not None else 0,
                   self._deferred_map.epoch if self._deferred_map is not None else 0)
        if self.beacon.map_missing(ack.version, have, now):
            log.warning(f"the monitor acks map epoch {ack.version}, we have {have}: "
                        f"subscribing again")
            self._renew_subs = True
            self.wake()

"""The trio shell around the VRRP cores: it only moves bytes, runs timers and processes.

- one UDP socket per `unicast_src_ip` (port `mdsemu_vrrp_port`) sends and receives adverts;
- one scheduler task calls `Instance.tick` at each instance's deadline;
- one task per tracked vrrp_script runs it every `interval` (killed after `timeout`);
- notify scripts run in the background, in order per instance;
- holding a VIP = listening on VIP:PORT for each virtual_server on it and piping every
  connection to its real_server; releasing it closes the listener and those connections;
- a unix control socket answers `status` with JSON (vip.status renders it).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import signal
import socket
import subprocess
import time

import structlog
import trio

from vip import netaddr, packet
from vip.conf import Config, InstanceSpec, VirtualServer
from vip.track import ScriptTracker
from vip.vrrp import (
    Instance,
    Log,
    Notify,
    ReleaseVips,
    SendAdvert,
    TakeVips,
)

log = structlog.get_logger()
BIND_RETRY = 0.05  # s between attempts to listen on a VIP:PORT another holder still has


class Keepalived:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.specs: dict[str, InstanceSpec] = {s.cfg.name: s for s in config.instances}
        self.instances = {name: Instance(s.cfg) for name, s in self.specs.items()}
        tracked = {script for s in config.instances for script in s.cfg.track}
        self.trackers = {name: ScriptTracker(config.scripts[name]) for name in sorted(tracked)}
        self._socks: dict[str, trio.socket.SocketType] = {}
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._holds: dict[str, trio.CancelScope] = {}  # vip → scope of its listeners
        self._devs = {v: d for s in config.instances for v, d in s.devs.items()}  # real VIPs
        self._notify_send: dict[str, trio.MemorySendChannel] = {}
        self._last_transition: dict[str, float] = {}  # wall clock, as keepalived shows it

    # -- running ----------------------------------------------------------------------------
    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        log.info(f"Opening file '{self.config.path}'.")
        for w in self.config.warnings:
            log.warning(w)
        for spec in self.config.instances:
            ip = spec.cfg.src_ip
            if ip not in self._socks:
                sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                await sock.bind((ip, self.config.vrrp_port))
                self._socks[ip] = sock
        ctl = await self._bind_control()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for name in self.instances:
                send, recv = trio.open_memory_channel(math.inf)
                self._notify_send[name] = send
                nursery.start_soon(self._notify_runner, name, recv)
            for ip, sock in self._socks.items():
                nursery.start_soon(self._receiver, ip, sock)
            for tracker in self.trackers.values():
                nursery.start_soon(self._script_loop, tracker)
            nursery.start_soon(self._control_loop, ctl)
            nursery.start_soon(self._sighup)
            now = trio.current_time()
            for inst in self.instances.values():
                await self._apply(inst, inst.start(now))
            nursery.start_soon(self._scheduler)
            log.info("Startup complete")
            task_status.started()

    async def stop(self) -> None:
        """Clean stop (SIGTERM): every master sends a priority-0 advert and lets go."""
        log.info("Stopping")
        now = trio.current_time()
        for inst in self.instances.values():
            await self._apply(inst, inst.stop(now))
        with contextlib.suppress(OSError):
            os.unlink(self.config.control_socket)
        log.info("Stopped")
        for send in self._notify_send.values():
            send.close()
        with trio.move_on_after(1):  # let the STOP notifies finish, but not forever
            while any(s.statistics().current_buffer_used for s in self._notify_send.values()):
                await trio.sleep(0.01)

    # -- effects ----------------------------------------------------------------------------
    async def _apply(self, inst: Instance, effects: list) -> None:
        spec = self.specs[inst.name]
        for e in effects:
            if isinstance(e, SendAdvert):
                await self._send_advert(spec, e.priority)
            elif isinstance(e, Log):
                log.info(e.message)
            elif isinstance(e, TakeVips):
                for vip in spec.vips:
                    await self._take(vip)
            elif isinstance(e, ReleaseVips):
                for vip in spec.vips:
                    self._release(vip)
            elif isinstance(e, Notify):
                self._last_transition[inst.name] = time.time()
                with contextlib.suppress(trio.ClosedResourceError):
                    self._notify_send[inst.name].send_nowait(e)
        self._wake.set()

    async def _send_advert(self, spec: InstanceSpec, priority: int) -> None:
        data = packet.encode(spec.cfg.version, spec.cfg.vrid, priority,
                             spec.cfg.adver_int, spec.vips)
        sock = self._socks[spec.cfg.src_ip]
        for peer in spec.peers:
            try:
                await sock.sendto(data, (peer, self.config.vrrp_port))
            except OSError as e:  # a peer that is down refuses; VRRP does not care
                log.debug(f"({spec.cfg.name}) advert to {peer} failed", error=str(e))

    # -- tasks ------------------------------------------------------------------------------
    async def _scheduler(self) -> None:
        while True:
            deadlines = [d for i in self.instances.values() if (d := i.deadline()) is not None]
            with trio.move_on_at(min(deadlines, default=math.inf)):
                await self._wake.wait()
            self._wake = trio.Event()
            now = trio.current_time()
            for inst in self.instances.values():
                d = inst.deadline()
                if d is not None and now >= d:
                    await self._apply(inst, inst.tick(now))

    async def _receiver(self, ip: str, sock) -> None:
        by_vrid = {s.cfg.vrid: self.instances[n] for n, s in self.specs.items()
                   if s.cfg.src_ip == ip}
        while True:
            try:
                data, (src, _port) = await sock.recvfrom(2048)
            except OSError as e:  # ICMP port unreachable from a stopped peer
                log.debug("advert socket error", error=str(e))
                continue
            try:
                _version, advert = packet.decode(data, src)
            except ValueError as e:
                log.warning(f"bad VRRP packet from {src}: {e}")
                continue
            inst = by_vrid.get(advert.vrid)
            if inst is None:
                continue
            await self._apply(inst, inst.receive(advert, trio.current_time()))

    async def _script_loop(self, tracker: ScriptTracker) -> None:
        cfg = tracker.cfg
        argv = shlex.split(cfg.script)
        missing_logged = False
        while True:
            rc: int | None = None
            with trio.move_on_after(cfg.timeout or cfg.interval):
                try:
                    proc = await trio.run_process(argv, check=False,
                                                  stdout=subprocess.DEVNULL)
                    rc = proc.returncode
                except OSError as e:  # said once, then counted as a failure each interval
                    if not missing_logged:
                        log.warning(f"Cannot run script {cfg.script}: {e.strerror}")
                        missing_logged = True
                    rc = 127
            changed, lines = tracker.record(rc)
            for line in lines:
                log.info(line)
            if changed is not None:
                now = trio.current_time()
                for inst in self.instances.values():
                    await self._apply(inst, inst.script_status(cfg.name, changed, now))
            await trio.sleep(cfg.interval)

    async def _sighup(self) -> None:
        """keepalived reloads its configuration on SIGHUP; we do not, but must not die of it."""
        with trio.open_signal_receiver(signal.SIGHUP) as signals:
            async for _ in signals:
                log.warning("Reloading is not supported by mdsemu-keepalived - "
                            "restart it to read a new configuration")

    async def _notify_runner(self, name: str, recv: trio.MemoryReceiveChannel) -> None:
        notify = self.specs[name].notify
        async for event in recv:
            cmds = []
            if event.state.lower() in notify:
                cmds.append(shlex.split(notify[event.state.lower()]))
            if "" in notify:
                cmds.append([*shlex.split(notify[""]), "INSTANCE", name, event.state,
                             str(event.priority)])
            for argv in cmds:
                try:
                    await trio.run_process(argv, check=False)
                except OSError as e:
                    log.warning(f"({name}) notify script {argv[0]} failed: {e.strerror}")

    # -- holding addresses ------------------------------------------------------------------
    async def _take(self, vip: str) -> None:
        if vip in self._holds or self._nursery is None:
            return
        scope = trio.CancelScope()
        self._holds[vip] = scope
        servers = [s for s in self.config.servers if s.vip == vip]
        self._nursery.start_soon(self._hold, vip, servers, scope)

    def _release(self, vip: str) -> None:
        scope = self._holds.pop(vip, None)
        if scope is not None:
            scope.cancel()
            if vip in self._devs:  # a real address: off the interface, as keepalived does
                dev, plen = self._devs[vip]
                try:
                    netaddr.delete(vip, plen, dev)
                    log.info(f"deleted {vip}/{plen} from {dev}")
                except OSError as e:
                    log.error(f"cannot delete {vip}/{plen} from {dev}: {e.strerror or e}")

    async def _hold(self, vip: str, servers: list[VirtualServer], scope) -> None:
        with scope:
            if vip in self._devs:  # a real address: on the interface, then gratuitous ARP
                dev, plen = self._devs[vip]
                try:
                    netaddr.add(vip, plen, dev)
                    log.info(f"added {vip}/{plen} to {dev}")
                    netaddr.send_garp(vip, dev)
                    log.info(f"Sending/queueing gratuitous ARPs on {dev} for {vip}")
                except OSError as e:
                    log.error(f"cannot hold {vip} on {dev}: {e.strerror or e}")
            async with trio.open_nursery() as nursery:
                if vip in self._devs:  # keepalived repeats them after garp_master_delay 5 s
                    nursery.start_soon(self._garp_again, vip)
                for s in servers:
                    nursery.start_soon(self._listen, s)

    async def _garp_again(self, vip: str) -> None:
        await trio.sleep(5)
        dev, _ = self._devs[vip]
        with contextlib.suppress(OSError):
            netaddr.send_garp(vip, dev)

    async def _listen(self, s: VirtualServer) -> None:
        warned = False
        while True:
            try:
                listeners = await trio.open_tcp_listeners(s.port, host=s.vip)
                break
            except OSError as e:
                if not warned:
                    log.warning(f"cannot listen on {s.vip}:{s.port} yet, retrying",
                                error=e.strerror)
                    warned = True
                await trio.sleep(BIND_RETRY)
        log.info(f"listening on {s.vip}:{s.port} for {s.real_ip}:{s.real_port}")
        await trio.serve_listeners(lambda stream: self._forward(stream, s), listeners)

    async def _forward(self, client: trio.SocketStream, s: VirtualServer) -> None:
        try:
            backend = await trio.open_tcp_stream(s.real_ip, s.real_port)
        except OSError as e:
            log.warning(f"real_server {s.real_ip}:{s.real_port} unreachable",
                        error=e.strerror)
            await client.aclose()
            return
        async with client, backend, trio.open_nursery() as nursery:
            async def pipe(src, dst):
                try:
                    async for chunk in src:
                        await dst.send_all(chunk)
                    await dst.send_eof()
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
                nursery.cancel_scope.deadline = min(nursery.cancel_scope.deadline,
                                                    trio.current_time() + 5)
            nursery.start_soon(pipe, client, backend)
            nursery.start_soon(pipe, backend, client)

    # -- control socket ---------------------------------------------------------------------
    async def _bind_control(self):
        path = self.config.control_socket
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        await sock.bind(path)
        sock.listen(16)
        return sock

    async def _control_loop(self, sock) -> None:
        listener = trio.SocketListener(sock)
        await trio.serve_listeners(self._control, [listener])

    async def _control(self, stream: trio.SocketStream) -> None:
        async with stream:
            with trio.move_on_after(5):
                request = b""
                async for chunk in stream:
                    request += chunk
                    if b"\n" in request or len(request) > 1024:
                        break
                word = request.decode(errors="replace").strip()
                reply = (self.status() if word == "status"
                         else {"error": f"unknown request '{word}'"})
                with contextlib.suppress(trio.BrokenResourceError):
                    await stream.send_all(json.dumps(reply).encode() + b"\n")

    def status(self) -> dict:
        """keepalived's JSON dump layout (`vrrp`: [{data, stats}], as vrrp_json.c writes
        /tmp/keepalived.json) with mdsemu's own fields beside it under `mdsemu`."""
        out = []
        for name, inst in self.instances.items():
            spec = self.specs[name]
            data = inst.data()
            data["last_transition"] = self._last_transition.get(name, 0.0)
            for state, cmd in spec.notify.items():
                data[f"script_{state}" if state else "script"] = cmd
            data["vips"] = spec.vips
            if spec.cfg.track:
                data["track_script"] = [self.config.scripts[s].script for s in spec.cfg.track]
            extra = {"state": inst.state, "master": inst.master_src,
                     "down_interval": round(inst.down_interval(), 6),
                     "unicast_src_ip": spec.cfg.src_ip, "unicast_peer": spec.peers,
                     "track_script": [{"name": s, "weight": w,
                                       "status": self.trackers[s].status()["status"]}
                                      for s, w in spec.cfg.track.items()]}
            out.append({"data": data, "stats": dict(inst.stats), "mdsemu": extra})
        return {"router_id": self.config.router_id, "pid": os.getpid(),
                "vrrp_port": self.config.vrrp_port, "vrrp": out,
                "scripts": [t.status() for t in self.trackers.values()],
                "virtual_servers": [
                    {"vip": s.vip, "port": s.port, "real_server": f"{s.real_ip}:{s.real_port}",
                     "listening": s.vip in self._holds} for s in self.config.servers]}

"""`mdsemu nfs-client load`: clients taking conflicting locks through NFS heads, reclaiming
after a head restarts, writing the history that `verify` (nfs/history.py) checks.

Client i uses head i mod len(servers) and the files of that head, `/nfsload/<head>-<k>`;
`--shared-files` makes every client use the same files, so that clients of different heads
contend too: their locks conflict through the MDS (each head takes its clients' locks as
CephFS locks, nfs/fsal.py).

Each client loops: open a file and LOCK it (write, or read a `--reads` fraction of the time); on
NFS4ERR_DENIED or NFS4ERR_GRACE it retries shortly after; holding, it renews its lease every
lease/2 (SEQUENCE, as a client's renewal thread) and unlocks after a while. When its head goes
away it reconnects; a new incarnation of the head (another `boot` in its client id) means a
restart: within its lease it reclaims (OPEN CLAIM_PREVIOUS, LOCK reclaim, RECLAIM_COMPLETE),
and a refused reclaim or an expired lease is the lock reported lost.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass

import trio

from common.net import ConnectionClosed
from nfs.client import NFSClient
from nfs.nfs4 import TO_EOF, NFS4Error

RETRY = 0.1  # between attempts at a lock held by another, or a head that is not back
THINK = 0.5  # at most this long between a release and the next lock
IO_PERIOD = 1.0  # a holder uses its lock (a SEQUENCE) this often: it notices a restart soon
CALL_TIMEOUT = 5.0
DIR = "/nfsload"


class History:
    def __init__(self, f) -> None:
        self.f = f

    def add(self, **ev) -> None:
        self.f.write(json.dumps(ev) + "\n")
        self.f.flush()


@dataclass
class Held:
    path: str
    type: str
    boot: int
    lock_stateid: int
    until: float


class LoadClient:
    def __init__(self, name: str, server: str, files: list[str], history: History,
                 rng: random.Random, run_id: str, reads: float = 0.25) -> None:
        self.name, self.server, self.files = name, server, files
        self.h, self.rng, self.reads = history, rng, reads
        self.owner = f"nfsload-{run_id}-{name}"
        self.conn: NFSClient | None = None
        self.conn_scope: trio.CancelScope | None = None
        self.boot = 0
        self.lease = 60.0
        self.last_ok = 0.0  # when the last request that the head answered was sent
        self.held: Held | None = None
        self.complete = False
        self.stats = {"granted": 0, "denied": 0, "grace": 0, "reclaimed": 0, "lost": 0,
                      "reconnects": 0}

    async def call(self, op: str, **args) -> dict:
        sent = time.time()
        try:
            with trio.fail_after(CALL_TIMEOUT):
                result = await self.conn.call(op, **args)
        except NFS4Error as e:
            if e.name not in ("NFS4ERR_BADSESSION", "NFS4ERR_STALE_CLIENTID",
                              "NFS4ERR_EXPIRED"):
                self.last_ok = sent  # the head answered within the session: lease renewed
            raise
        self.last_ok = sent
        return result

    async def run(self, deadline: float) -> None:
        async with trio.open_nursery() as nursery:
            try:
                while time.time() < deadline or self.held is not None:
                    if time.time() > deadline + 3 * self.lease:
                        break  # the head never came back: the lease says the lock is gone
                    try:
                        if self.conn is None:
                            await self._connect(nursery)
                        elif self.held is not None:
                            await self._hold(deadline)
                        else:
                            await self._try_lock()
                    except (ConnectionClosed, OSError, trio.TooSlowError,
                            trio.BrokenResourceError):
                        self._drop()
                        await trio.sleep(RETRY)
                    except NFS4Error as e:
                        if e.name in ("NFS4ERR_BADSESSION", "NFS4ERR_STALE_CLIENTID",
                                      "NFS4ERR_EXPIRED", "NFS4ERR_BAD_STATEID"):
                            self._drop()
                        await trio.sleep(RETRY)
            finally:
                if self.held is not None:
                    self._lost("unreachable", self.last_ok + self.lease)
                nursery.cancel_scope.cancel()
                self._drop()

    def _drop(self) -> None:
        if self.conn_scope is not None:
            self.conn_scope.cancel()  # closes the connection
        self.conn, self.conn_scope = None, None

    async def _connect(self, nursery: trio.Nursery) -> None:
        conn, self.conn_scope = await _open(nursery, self.server)
        self.conn = conn
        self.stats["reconnects"] += 1
        clientid = (await self.call("exchange_id", owner=self.owner, verifier="1"))["clientid"]
        reply = await self.call("create_session", clientid=clientid)
        conn.session, conn.clientid = reply["sessionid"], clientid
        boot, self.lease = clientid >> 32, float(reply.get("lease", self.lease))
        self.h.add(ev="mount", client=self.name, server=self.server, boot=boot,
                   lease=self.lease, t=time.time())
        restarted = self.boot and boot != self.boot
        self.boot = boot
        if restarted:
            self.complete = False
            if self.held is not None:
                await self._reclaim()
        try:
            await self.call("mkdir", path=DIR)
        except NFS4Error as e:
            if e.name != "NFS4ERR_EXIST":
                raise
        if not self.complete:
            try:
                await self.call("reclaim_complete")
            except NFS4Error as e:
                if e.name != "NFS4ERR_COMPLETE_ALREADY":
                    raise
            self.complete = True

    async def _reclaim(self) -> None:
        held = self.held
        if time.time() > self.last_ok + self.lease:
            self._lost("lease", self.last_ok + self.lease)
            return
        try:
            sid = (await self.call("open", path=held.path, claim="previous"))["stateid"]
            sent = time.time()
            lk = await self.call("lock", stateid=sid, type=held.type, offset=0, length=TO_EOF,
                                 reclaim=True)
        except NFS4Error as e:
            self._lost(e.name, time.time())
            return
        self.h.add(ev="grant", client=self.name, server=self.server, boot=self.boot,
                   path=held.path, type=held.type, offset=0, length=TO_EOF, reclaim=True,
                   sent=sent, t=time.time())
        held.boot, held.lock_stateid = self.boot, lk["lock_stateid"]
        self.stats["reclaimed"] += 1

    def _lost(self, reason: str, t: float) -> None:
        self.h.add(ev="lost", client=self.name, path=self.held.path, reason=reason, t=t)
        self.held = None
        self.stats["lost"] += 1

    async def _try_lock(self) -> None:
        path = self.rng.choice(self.files)
        type_ = "read" if self.rng.random() < self.reads else "write"
        sent = time.time()
        try:
            sid = (await self.call("open", path=path, create=True))["stateid"]
            sent = time.time()
            lk = await self.call("lock", stateid=sid, type=type_, offset=0, length=TO_EOF)
        except NFS4Error as e:
            if e.name == "NFS4ERR_DENIED":
                self.stats["denied"] += 1
            elif e.name == "NFS4ERR_GRACE":  # after RECLAIM_COMPLETE: the head is in grace
                self.stats["grace"] += 1
                self.h.add(ev="grace", client=self.name, server=self.server, boot=self.boot,
                           in_grace=True, sent=sent, t=time.time())
            else:
                raise
            await trio.sleep(RETRY * (0.5 + self.rng.random()))
            return
        now = time.time()
        self.h.add(ev="grant", client=self.name, server=self.server, boot=self.boot, path=path,
                   type=type_, offset=0, length=TO_EOF, reclaim=False, sent=sent, t=now)
        self.stats["granted"] += 1
        self.held = Held(path, type_, self.boot, lk["lock_stateid"],
                         now + 0.5 + 2.5 * self.rng.random())

    async def _hold(self, deadline: float) -> None:
        held = self.held
        now = time.time()
        if now >= held.until or now >= deadline:
            self.h.add(ev="release", client=self.name, path=held.path, t=now)
            self.held = None
            await self.call("locku", lock_stateid=held.lock_stateid, offset=0, length=TO_EOF)
            await trio.sleep(THINK * self.rng.random())  # gives the others a chance
            return
        await trio.sleep(min(held.until - now, IO_PERIOD, self.lease / 2))
        if time.time() < held.until:  # use the lock: renews the lease, notices a restart
            sent = time.time()
            r = await self.call("sequence")
            self.h.add(ev="grace", client=self.name, server=self.server, boot=self.boot,
                       in_grace=bool(r.get("in_grace")), sent=sent, t=time.time())


async def _open(nursery: trio.Nursery, server: str) -> tuple[NFSClient, trio.CancelScope]:
    """A connection that lives in the client's nursery until its scope is cancelled."""

    async def keep(task_status=trio.TASK_STATUS_IGNORED) -> None:
        started = False
        with trio.CancelScope() as scope:
            try:
                async with NFSClient.connect(server, timeout=CALL_TIMEOUT) as c:
                    task_status.started((c, scope))
                    started = True
                    await trio.sleep_forever()
            except (OSError, trio.BrokenResourceError, ConnectionClosed):
                if not started:
                    raise  # the caller retries
                # else a dead head's connection: its client notices on its next call

    return await nursery.start(keep)


async def run(servers: list[str], clients: int, duration: float, history_path: str,
              files: int = 2, shared: bool = False, seed: int | None = None,
              reads: float = 0.25) -> dict:
    rng = random.Random(seed)
    run_id = f"{rng.getrandbits(32):08x}"
    with open(history_path, "w") as f:
        h = History(f)
        group = [f"{DIR}/{0 if shared else i}-{k}" for i in range(len(servers))
                 for k in range(files)]
        load = []
        for i in range(clients):
            s = i % len(servers)
            mine = group[:files] if shared else group[s * files:(s + 1) * files]
            load.append(LoadClient(f"c{i}", servers[s], mine, h,
                                   random.Random(rng.getrandbits(32)), run_id, reads))
        deadline = time.time() + duration
        async with trio.open_nursery() as nursery:
            for lc in load:
                nursery.start_soon(lc.run, deadline)
    total: dict[str, int] = {}
    for lc in load:
        for k, n in lc.stats.items():
            total[k] = total.get(k, 0) + n
    return total

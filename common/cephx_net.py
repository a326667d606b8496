"""The trio glue of cephx (the protocol is in common/cephx.py).

`CephxClient` is one entity's credentials in one process: its secret, the service tickets
its monitor sessions fetched and renew, and, for an MDS or osd, its service's rotating secrets
as the monitor hands them out. `net.connect` calls `handshake` when the peer challenges it;
`MonClient` runs `mon_session` beside each monitor session and passes it the monitor's
`auth_tickets` and `auth_rotating`.

`accept_service` is the MDS's and the osd's side of a handshake: the peer's identity comes
from its ticket, and from then on the connection is signed with the ticket's session key.
"""

from __future__ import annotations

import errno
import time

import structlog
import trio

from common import cephx
from common import messages as m
from common.cephx import AuthError, Identity, RotatingSecrets, Ticket

log = structlog.get_logger("auth")

TICKET_WAIT = 10.0  # how long a connection waits for the monitor session's first tickets
ROTATING_WAIT = 10.0  # how long a fresh daemon waits for its service's rotating secrets
RETRY_RENEWAL = 5.0
POLL = 0.02  # waits poll: one CephxClient may serve several trio runs (threads) at once


class CephxClient:
    def __init__(self, entity: str, secret: bytes, sign: bool = True) -> None:
        self.entity = entity
        self.secret = secret
        self.sign = sign
        self.tickets: dict[str, Ticket] = {}
        self.rotating: dict[str, RotatingSecrets] = {}
        self.answered_on = None  # the monitor connection that last sent us tickets

    def fork(self) -> CephxClient:
        """The same credentials with tickets of their own: for another client instance
        (another monitor session, another gid) in the same process."""
        return CephxClient(self.entity, self.secret, self.sign)

    # -- the client's side of a handshake
    async def handshake(self, conn, chal: m.AuthChallenge, addr: str = ""):
        """Answer `chal` on `conn`; return the peer's next message (hello_ok or an error).
        AuthError if the peer fails to prove itself, or we have no ticket for it."""
        if chal.service == "mon":
            mine = cephx.challenge()
            await conn.send(m.AuthRequest(challenge=mine, proof=cephx.client_proof(
                self.secret, self.entity, chal.challenge, mine)))
            reply = await conn.recv()
            if not isinstance(reply, m.HelloOk):
                return reply
            key = cephx.client_finish(self.secret, self.entity, mine, reply.auth)
            conn.session_key = key  # opens this session's tickets
        else:
            ticket = await self._ticket(chal.service)
            await conn.send(m.AuthRequest(
                authorizer=cephx.authorizer(ticket, self.entity, chal.challenge), addr=addr))
            reply = await conn.recv()
            if not isinstance(reply, m.HelloOk):
                return reply
            cephx.client_check_service(ticket, chal.challenge, reply.auth)
            key = ticket.key
        if self.sign:
            conn.sign_with(cephx.Signer(key, initiator=True))
        return reply

    async def _ticket(self, service: str) -> Ticket:
        with trio.move_on_after(TICKET_WAIT):
            while True:
                t = self.tickets.get(service)
                if t is not None and t.expires > time.time():
                    return t
                await trio.sleep(POLL)
        raise AuthError(errno.EACCES, f"no valid {service} ticket for {self.entity} (is the "
                                      f"monitor session up?)")

    # -- beside a monitor session
    async def mon_session(self, conn) -> None:
        """Fetch tickets at the start of the session, then renew them before they expire;
        a request left unanswered is made again every RETRY_RENEWAL seconds."""
        asked_at: float | None = None  # trio's clock; the tickets' expiry is wall time
        while True:
            now, mono = time.time(), trio.current_time()
            answered = self.answered_on is conn
            ask = cephx.tickets_to_request(self.tickets, now,
                                           None if asked_at is None else mono - asked_at,
                                           RETRY_RENEWAL, answered)
            if ask:
                await conn.send(m.AuthGetTickets(services=ask))
                asked_at = mono
            if not answered or cephx.tickets_due(self.tickets, now):
                await trio.sleep(POLL)  # until the reply, or the time to ask again
                continue
            wake = min((t.expires - t.ttl / 4 for t in self.tickets.values()),
                       default=now + RETRY_RENEWAL)
            await trio.sleep(min(max(wake - now, POLL), RETRY_RENEWAL))

    def on_mon_message(self, conn, msg) -> bool:
        """Take the monitor's `auth_tickets` / `auth_rotating`; False for anything else."""
        key = getattr(conn, "session_key", None)
        if isinstance(msg, m.AuthTickets) and key is not None:
            for d in msg.tickets:
                t = cephx.open_ticket_reply(key, d, time.time())
                self.tickets[t.service] = t
            self.answered_on = conn
            return True
        if isinstance(msg, m.AuthRotating) and key is not None:
            opened = cephx.unseal(key, msg.sealed, msg.service.encode(), "rotating secrets")
            self.rotating[msg.service] = RotatingSecrets.from_wire(opened)
            return True
        return False

    async def rotating_for(self, service: str) -> RotatingSecrets | None:
        with trio.move_on_after(ROTATING_WAIT):
            while service not in self.rotating:
                await trio.sleep(POLL)
        return self.rotating.get(service)


def peer_ip(conn) -> str:
    return conn.peer.rpartition(":")[0]


async def accept_service(conn, hello: m.Hello, service: str, me: CephxClient | None,
                         hello_ok, logger) -> tuple[Identity, str] | None:
    """cephx at an MDS or osd, between the peer's hello and our hello_ok (made by
    `hello_ok(proof)`). Returns the peer's identity and its address instance, or None when
    refused (the peer was told why, and it is logged)."""

    async def refuse(code: int, why: str) -> None:
        logger.warning("refusing connection: authentication failed", peer=conn.peer,
                       entity=hello.entity, reason=why)
        await conn.send(m.Error(code=code, message=f"authentication failed: {why}"))

    if hello.auth != "cephx":
        await refuse(errno.EACCES, f"cephx is required and {hello.entity} presented no ticket")
        return None
    chal = cephx.challenge()
    await conn.send(m.AuthChallenge(service=service, challenge=chal))
    req = await conn.recv()
    if not isinstance(req, m.AuthRequest):
        await refuse(errno.EPROTO, f"expected auth_request, got {req.TYPE}")
        return None
    rotating = await me.rotating_for(service) if me is not None else None
    if rotating is None:
        await refuse(errno.EAGAIN, f"no rotating {service} secrets from the monitor yet")
        return None
    try:
        ident, proof = cephx.service_accept(service, rotating, hello.entity, chal,
                                            req.authorizer, time.time())
    except AuthError as e:
        await refuse(e.code, str(e))
        return None
    addr = req.addr
    if addr and addr.split("/")[0].rpartition(":")[0] != peer_ip(conn):
        await refuse(errno.EPERM, f"address {addr} is not the connection's ({conn.peer})")
        return None
    await conn.send(hello_ok(proof))
    if me.sign:
        conn.sign_with(cephx.Signer(ident.key, initiator=False))
    conn.attach(hello.entity)
    conn.identity, conn.bound_addr = ident, addr
    logger.debug("authenticated", peer=conn.peer, entity=ident.entity, gid=ident.gid)
    return ident, addr


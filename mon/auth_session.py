"""cephx at the monitor, the trio side: the handshake that opens a session, and the session's
requests for service tickets. The decisions are in common/cephx.py and mon/auth_monitor.py.
"""

from __future__ import annotations

import errno

import structlog

from common import cephx
from common import messages as m
from common.caps import CapsError, MonCaps
from common.cephx import AuthError
from mon.auth_monitor import AuthMonitor, daemon_service

log = structlog.get_logger("mon")


class Refused(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


async def authenticate(conn, hello: m.Hello, auth: AuthMonitor, sign: bool) -> tuple[bytes,
                                                                                    MonCaps]:
    """Challenge the peer and check its proof; on success the caller sends hello_ok with
    `conn.auth_reply`. Returns the session key and the peer's mon caps. Refused (EACCES) if
    it has no key, a wrong one, or replays an old proof."""
    if hello.auth != "cephx":
        raise Refused(errno.EACCES, f"authentication failed: cephx is required and "
                                    f"{hello.entity} presented no key")
    secret = auth.secret(hello.entity)
    chal = cephx.challenge()
    await conn.send(m.AuthChallenge(service="mon", challenge=chal))
    req = await conn.recv()
    if not isinstance(req, m.AuthRequest):
        raise Refused(errno.EPROTO, f"expected auth_request, got {req.TYPE}")
    if secret is None:
        log.warning("cephx: unknown entity", entity=hello.entity, peer=conn.peer)
        raise Refused(errno.EACCES, "authentication failed: unknown entity "
                                    f"{hello.entity}")
    try:
        key, reply = cephx.mon_accept(secret, hello.entity, chal, req.challenge, req.proof)
        caps = MonCaps.parse(auth.caps_of(hello.entity, "mon"))
    except AuthError as e:
        raise Refused(e.code, f"authentication failed: {e}") from None
    except CapsError as e:
        raise Refused(errno.EACCES, f"authentication failed: bad mon caps: {e}") from None
    conn.auth_reply = reply
    return key, caps


def tickets(session, msg: m.AuthGetTickets, auth: AuthMonitor, ttl: float,
            wall: float) -> list:
    """The replies to a session's ticket request: its tickets and, for an MDS or osd, its
    service's rotating secrets."""
    services = [s for s in msg.services if isinstance(s, str)]
    out: list = [m.AuthTickets(tickets=auth.tickets(services, session.key, session.entity,
                                                    session.gid, wall, ttl))]
    service = daemon_service(session.entity)
    if service is not None:
        out.append(m.AuthRotating(service=service,
                                  sealed=auth.rotating_for(service, session.key)))
    return out


def rotated(sessions, services: list[str], auth: AuthMonitor) -> None:
    """Tell every daemon of a rotated service its new secrets."""
    for s in sessions:
        service = daemon_service(s.entity)
        if service in services and s.key is not None:
            s.queue(m.AuthRotating(service=service, sealed=auth.rotating_for(service, s.key)))


def sign(conn, key: bytes, enabled: bool) -> None:
    if enabled:
        conn.sign_with(cephx.Signer(key, initiator=False))

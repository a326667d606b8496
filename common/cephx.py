"""cephx, sans-IO: the handshake with the monitor, service tickets, authorizers and message
signatures (Ceph's doc/dev/cephx.rst and cephx_protocol.rst, in mdsemu's framing).

No sockets and no clock here: time arrives as `now` (wall seconds, since tickets cross
processes) and randomness from `os.urandom`. The primitives are AES-128-GCM (sealing: a
ticket or a key only its holder can open, and no one can alter) and HMAC-SHA256 (proofs and
signatures), from `cryptography` and the standard library.

1. Monitor handshake. The client says hello; the monitor answers with a fresh server
   challenge; the client answers with its own challenge and a proof, HMAC(its secret, both
   challenges and its name). The monitor checks the proof against the stored secret (the key
   never crosses the wire; a replayed proof fails, the challenge differs on every connection)
   and replies with a session key sealed with the client's secret, together with its own proof
   over the client's challenge: only a monitor that knows the secret can make it (mutual).
2. Service tickets. On the signed monitor session the client asks for tickets for "mds" and
   "osd". Each is sealed with the service's current rotating secret (which only the monitor
   and that service's daemons hold) and carries the client's name, gid, caps for that service,
   a fresh service session key and an expiry (`auth_service_ticket_ttl`); the session key and
   expiry come to the client again, sealed with its monitor session key.
3. Authorizers. Connecting to an MDS or osd, the client says hello, gets a challenge and sends
   the ticket with HMAC(service session key, challenge): proof that it holds the key the ticket
   names, fresh for this connection. The service opens the ticket with the rotating secret the
   ticket names, checks expiry and proof, and answers with its own proof.
4. Signatures. Every frame after the handshake carries HMAC(session key, direction, sequence,
   body): a changed, injected, dropped or replayed frame fails the check.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
from dataclasses import dataclass, field

import msgpack
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CHALLENGE_LEN = 16
KEY_LEN = 16
SIG_LEN = 32
SERVICES = ("mds", "osd")
ROTATING_KEEP = 3  # Ceph keeps the previous, current and next rotating secret


class AuthError(Exception):
    """Authentication failed; `code` is the errno the peer is told (EACCES, EKEYEXPIRED...)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def new_key() -> bytes:
    return os.urandom(KEY_LEN)


def challenge() -> bytes:
    return os.urandom(CHALLENGE_LEN)


def seal(key: bytes, obj, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, msgpack.packb(obj, use_bin_type=True), aad)


def unseal(key: bytes, blob: bytes, aad: bytes, what: str):
    """Open what `seal` made; AuthError if the key is wrong or the blob was altered."""
    if not isinstance(blob, bytes) or len(blob) < 12 + 16:
        raise AuthError(errno.EACCES, f"{what}: malformed")
    try:
        return msgpack.unpackb(AESGCM(key).decrypt(blob[:12], blob[12:], aad), raw=False)
    except InvalidTag:
        raise AuthError(errno.EACCES, f"{what}: cannot be decrypted (wrong key, or "
                                      f"altered)") from None


def proof(key: bytes, *parts: bytes) -> bytes:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for p in parts:
        mac.update(len(p).to_bytes(4, "big") + p)
    return mac.digest()


def _check(expected: bytes, got: object, what: str) -> None:
    if not isinstance(got, bytes) or not hmac.compare_digest(expected, got):
        raise AuthError(errno.EACCES, f"{what}: bad proof")


# -- 1. the monitor handshake
def client_proof(secret: bytes, entity: str, server_chal: bytes, client_chal: bytes) -> bytes:
    return proof(secret, b"cephx client", entity.encode(), server_chal, client_chal)


def mon_accept(secret: bytes, entity: str, server_chal: bytes, client_chal: bytes,
               got_proof: object) -> tuple[bytes, bytes]:
    """The monitor checks a client's proof. Returns (session key, the sealed reply)."""
    if not isinstance(client_chal, bytes) or len(client_chal) != CHALLENGE_LEN:
        raise AuthError(errno.EINVAL, "bad client challenge")
    _check(client_proof(secret, entity, server_chal, client_chal), got_proof,
           f"authentication of {entity}")
    session_key = new_key()
    reply = seal(secret, {"session_key": session_key,
                          "mon_proof": proof(secret, b"cephx mon", client_chal)},
                 entity.encode())
    return session_key, reply


def client_finish(secret: bytes, entity: str, client_chal: bytes, reply: bytes) -> bytes:
    """The client opens the monitor's reply and checks that the monitor knows its secret.
    Returns the session key."""
    d = unseal(secret, reply, entity.encode(), "the monitor's reply")
    _check(proof(secret, b"cephx mon", client_chal), d.get("mon_proof"), "the monitor")
    return d["session_key"]


# -- 2. rotating secrets and tickets
@dataclass
class RotatingSecrets:
    """One service's rotating secrets: id -> (secret, until when it seals new tickets). As
    Ceph's, the previous, current and next: the daemons get the next one before any ticket
    is sealed with it, and keep the previous one for tickets sealed before a rotation."""

    secrets: dict[int, tuple[bytes, float]] = field(default_factory=dict)

    def rotate(self, now: float, ttl: float) -> bool:
        """Move on what is due; True if anything changed (tell the daemons)."""
        changed = False
        while len(self.secrets) < 2 or self.secrets[self.current()[0]][1] <= now:
            newest = max(self.secrets, default=0)
            until = self.secrets[newest][1] + ttl if newest else now + ttl
            self.secrets[newest + 1] = (new_key(), until)
            changed = True
        for old in sorted(self.secrets)[:-ROTATING_KEEP]:
            del self.secrets[old]
        return changed

    def current(self) -> tuple[int, bytes]:
        """The secret that seals new tickets (the newest is the next one)."""
        sid = sorted(self.secrets)[-2] if len(self.secrets) > 1 else max(self.secrets)
        return sid, self.secrets[sid][0]

    def get(self, secret_id: int) -> bytes | None:
        got = self.secrets.get(secret_id)
        return got[0] if got is not None else None

    def to_wire(self) -> dict:
        return {str(k): [s, e] for k, (s, e) in self.secrets.items()}

    @classmethod
    def from_wire(cls, d: dict) -> RotatingSecrets:
        return cls({int(k): (bytes(v[0]), float(v[1])) for k, v in d.items()})


def issue_ticket(service: str, rotating: RotatingSecrets, session_key: bytes, entity: str,
                 gid: int, caps: str, now: float, ttl: float) -> dict:
    """What the monitor hands a client for `service` (CephXServiceTicketInfo and the
    client's sealed copy of the key)."""
    sid, secret = rotating.current()
    svc_key = new_key()
    expires = now + ttl
    ticket = seal(secret, {"entity": entity, "gid": gid, "caps": caps, "key": svc_key,
                           "expires": expires}, service.encode())
    mine = seal(session_key, {"key": svc_key, "expires": expires}, service.encode())
    return {"service": service, "secret_id": sid, "ticket": ticket, "mine": mine}


@dataclass
class Ticket:
    """A client's ticket for one service."""
    service: str
    secret_id: int
    blob: bytes
    key: bytes
    expires: float
    ttl: float

    def needs_renewal(self, now: float) -> bool:
        return now >= self.expires - self.ttl / 4  # renew with a quarter of its life left


def tickets_due(tickets: dict[str, Ticket], now: float) -> list[str]:
    """The services we hold no ticket for, or whose ticket is due for renewal."""
    return [s for s in SERVICES if s not in tickets or tickets[s].needs_renewal(now)]


def tickets_to_request(tickets: dict[str, Ticket], now: float, since_asked: float | None,
                       retry: float, answered: bool = True) -> list[str]:
    """The services to ask the monitor for now: every one until this monitor session has
    answered once (`answered`: the reply brings a daemon its service's rotating secrets
    too), then those we hold no ticket for or that are due for renewal; nothing if we asked
    less than `retry` seconds ago (`since_asked`; None: not yet) and the reply may be on its
    way. Asking again matters for the first request too: it or its reply can vanish while
    the monitor session stays up (ms_blackhole_mon, a one-way partition), and a daemon
    without an osd ticket cannot replay its rank (Ceph's MonClient checks its tickets again
    at every tick, _check_auth_tickets)."""
    due = tickets_due(tickets, now) if answered else list(SERVICES)
    if not due or (since_asked is not None and since_asked < retry):
        return []
    return due


def open_ticket_reply(session_key: bytes, d: dict, now: float) -> Ticket:
    service = d["service"]
    mine = unseal(session_key, d["mine"], service.encode(), f"the {service} ticket")
    return Ticket(service, int(d["secret_id"]), d["ticket"], mine["key"], mine["expires"],
                  max(mine["expires"] - now, 0.0))


# -- 3. authorizers
@dataclass(frozen=True)
class Identity:
    """Who is on the other end, as the ticket says (never what the peer's ops say)."""
    entity: str
    gid: int
    caps: str
    key: bytes  # the session key of this connection: signs its frames


def authorizer(ticket: Ticket, entity: str, server_chal: bytes) -> dict:
    """`entity` (the name the hello gives) is checked against the ticket by the service; the
    proof covers the challenge, which makes it good for this connection only."""
    return {"secret_id": ticket.secret_id, "ticket": ticket.blob,
            "proof": proof(ticket.key, b"cephx authorizer", server_chal)}


def service_accept(service: str, rotating: RotatingSecrets, entity: str, server_chal: bytes,
                   auth: dict, now: float) -> tuple[Identity, bytes]:
    """The MDS or osd checks an authorizer. Returns the peer's identity and the service's
    proof to send back."""
    sid = auth.get("secret_id")
    secret = rotating.get(sid) if isinstance(sid, int) else None
    if secret is None:
        raise AuthError(errno.EACCES, f"ticket sealed with unknown rotating secret {sid} "
                                      f"(too old, or forged)")
    t = unseal(secret, auth.get("ticket"), service.encode(), "ticket")
    # the peer says hello as its auth name (client.admin) or, like a filesystem client, as
    # its instance name (client.<gid>, Ceph's entity_name_t): either must be the ticket's
    if entity not in (t["entity"], f"{t['entity'].split('.', 1)[0]}.{t['gid']}"):
        raise AuthError(errno.EACCES, f"ticket of {t['entity']} presented by {entity}")
    if t["expires"] <= now:
        raise AuthError(errno.EKEYEXPIRED, f"ticket of {entity} expired")
    _check(proof(t["key"], b"cephx authorizer", server_chal),
           auth.get("proof"), f"authorizer of {entity}")
    ident = Identity(t["entity"], int(t["gid"]), t["caps"], t["key"])
    return ident, proof(t["key"], b"cephx service", server_chal)


def client_check_service(ticket: Ticket, server_chal: bytes, got: object) -> None:
    _check(proof(ticket.key, b"cephx service", server_chal), got, f"the {ticket.service}")


# -- 4. signatures
class Signer:
    """Signs outgoing frames and checks incoming ones for one connection. Each direction
    counts its frames, so a dropped, repeated or reordered frame fails too."""

    def __init__(self, key: bytes, initiator: bool) -> None:
        self._key = key
        self._out, self._in = (b"c>s", b"s>c") if initiator else (b"s>c", b"c>s")
        self._sent = 0
        self._received = 0

    def sign(self, body: bytes) -> bytes:
        self._sent += 1
        return body + self._mac(self._out, self._sent, body)

    def verify(self, signed: bytes) -> bytes:
        """The body of a signed frame; AuthError if its signature is wrong."""
        if len(signed) < SIG_LEN:
            raise AuthError(errno.EBADMSG, "frame too short for its signature")
        body, sig = signed[:-SIG_LEN], signed[-SIG_LEN:]
        self._received += 1
        if not hmac.compare_digest(sig, self._mac(self._in, self._received, body)):
            raise AuthError(errno.EBADMSG, f"bad signature on frame {self._received}")
        return body

    def _mac(self, direction: bytes, seq: int, body: bytes) -> bytes:
        return hmac.new(self._key, direction + seq.to_bytes(8, "big") + body,
                        hashlib.sha256).digest()

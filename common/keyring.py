"""Keyrings in Ceph's format: one INI-like section per entity with its key and caps.

    [client.admin]
        key = AQ...==
        caps mds = "allow *"
        caps mon = "allow *"

A key is Ceph's CryptoKey encoding in base64: a 16-bit type (1, AES), the creation time (32-bit
seconds, 32-bit nanoseconds), a 16-bit length, then the 16 secret bytes; so every key starts
with "AQ", as Ceph's do. Files are written 0600 (they hold secrets).
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import time
from dataclasses import dataclass, field

SECRET_LEN = 16  # AES-128, as Ceph's CEPH_CRYPTO_AES
_HEADER = struct.Struct("<HIIH")
CRYPTO_AES = 1


class KeyringError(Exception):
    """A keyring that cannot be parsed, or a key that is not a Ceph key."""


def new_key(now: float | None = None) -> str:
    """A fresh secret, encoded as Ceph encodes it in a keyring."""
    now = time.time() if now is None else now
    sec = int(now)
    header = _HEADER.pack(CRYPTO_AES, sec, int((now - sec) * 1e9), SECRET_LEN)
    return base64.b64encode(header + os.urandom(SECRET_LEN)).decode()


def secret_of(key: str) -> bytes:
    """The secret bytes of an encoded key; KeyringError if it is not one."""
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"key '{key}' is not valid base64") from None
    if len(raw) < _HEADER.size:
        raise KeyringError("key too short")
    kind, _, _, length = _HEADER.unpack_from(raw)
    if kind != CRYPTO_AES or length != SECRET_LEN or len(raw) != _HEADER.size + length:
        raise KeyringError("not an AES key in Ceph's encoding")
    return raw[_HEADER.size:]


@dataclass
class Entry:
    key: str
    caps: dict[str, str] = field(default_factory=dict)  # service (mon, mds, osd) -> cap text

    def to_wire(self) -> dict:
        return {"key": self.key, "caps": dict(self.caps)}

    @classmethod
    def from_wire(cls, d: dict) -> Entry:
        return cls(d["key"], dict(d.get("caps", {})))


def parse(text: str) -> dict[str, Entry]:
    """entity -> Entry. KeyringError names the line that is wrong."""
    out: dict[str, Entry] = {}
    current: str | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise KeyringError(f"line {n}: bad section header {line!r}")
            current = line[1:-1].strip()
            out.setdefault(current, Entry(""))
            continue
        name, sep, value = line.partition("=")
        if not sep or current is None:
            raise KeyringError(f"line {n}: expected 'name = value' inside a [section]")
        name, value = " ".join(name.split()), value.strip()
        if name == "key":
            secret_of(value)
            out[current].key = value
        elif name.startswith("caps "):
            out[current].caps[name[5:].strip()] = _unquote(value)
        # other fields (auid, ...) are ignored, as a newer Ceph ignores old ones
    for entity, entry in out.items():
        if not entry.key:
            raise KeyringError(f"[{entity}] has no key")
    return out


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def render(entries: dict[str, Entry]) -> str:
    """Ceph's keyring text (what `auth get` prints and `auth import -i` reads)."""
    lines = []
    for entity, entry in entries.items():
        lines += [f"[{entity}]", f"\tkey = {entry.key}"]
        lines += [f'\tcaps {svc} = "{text}"' for svc, text in sorted(entry.caps.items())]
    return "\n".join(lines) + "\n"


def load(path: str) -> dict[str, Entry]:
    """The keyring at `path`; OSError if it cannot be read, KeyringError if it is bad."""
    with open(path) as f:
        return parse(f.read())


def write(path: str, entries: dict[str, Entry]) -> None:
    """Write a keyring readable by its owner only (0600), atomically."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(render(entries))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def secret_for(path: str, entity: str) -> bytes | None:
    """This entity's secret from the keyring at `path`; None if the file or the entity is
    missing (the caller reports it: Ceph's "unable to find a keyring")."""
    try:
        entry = load(path).get(entity)
    except (OSError, KeyringError):
        return None
    return secret_of(entry.key) if entry is not None else None

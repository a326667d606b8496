"""Capabilities, as Ceph writes and matches them (doc/rados/operations/user-management.rst).

A cap text is grants separated by commas (or semicolons):

- mon: `allow r|w|x|rw|rwx|*`, `allow command "fs dump"`, `profile mds|osd|client|...`
- osd: `allow r|w|rw|rwx|* [pool=<name>] [namespace=<ns>]`, `profile mds|osd|...`
- mds: `allow r|rw|rwp|* [path=/dir]`

Parsing raises CapsError with what is wrong (Ceph's `auth caps` refuses such text with
EINVAL). Matching is pure: `MonCaps.allows(prefix, need)`, `OSDCaps.allows(pool, ns, need)`,
`MDSCaps.allows(path, need)`; `need` is a set of "r", "w", "x".
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass

SERVICES = ("mon", "osd", "mds")
_PERMS = re.compile(r"^(\*|[rwxp]+)$")


class CapsError(Exception):
    """Cap text that does not parse."""


@dataclass(frozen=True)
class Grant:
    perms: frozenset  # of "r", "w", "x" ("*" is all three); empty for a command grant
    command: str = ""  # mon: `allow command "..."`
    profile: str = ""
    pool: str = ""  # osd
    namespace: str | None = None  # osd: None is any namespace
    path: str = ""  # mds: "" is everywhere


def _split_grants(text: str) -> list[list[str]]:
    """Words of each grant; quotes keep `command "fs dump"` in one word."""
    try:
        lex = shlex.shlex(text.replace(";", ","), posix=True, punctuation_chars=",=")
        lex.whitespace_split = True
        words = list(lex)
    except ValueError as e:
        raise CapsError(f"cannot parse '{text}': {e}") from None
    grants, cur = [], []
    for w in words:
        if w == ",":
            if cur:
                grants.append(cur)
            cur = []
        else:
            cur.append(w)
    if cur:
        grants.append(cur)
    if not grants:
        raise CapsError("empty caps")
    return grants


def _perms(word: str) -> frozenset:
    if not _PERMS.match(word):
        raise CapsError(f"bad permissions '{word}'")
    if word == "*":
        return frozenset("rwx")
    return frozenset(word) - {"p"}  # p (layouts and quotas) is not modelled


def parse(service: str, text: str) -> tuple[Grant, ...]:
    if service not in SERVICES:
        raise CapsError(f"unknown service '{service}'")
    out = []
    for words in _split_grants(text):
        if words[0] == "profile":
            if len(words) != 2:
                raise CapsError(f"bad profile grant '{' '.join(words)}'")
            out.append(Grant(frozenset(), profile=words[1]))
            continue
        if words == ["allow"]:  # Ceph's old spelling of `allow *` (MDS daemons have it)
            out.append(Grant(frozenset("rwx")))
            continue
        if words[0] != "allow" or len(words) < 2:
            raise CapsError(f"expected 'allow' or 'profile', got '{' '.join(words)}'")
        if words[1] == "command":
            if service != "mon" or len(words) != 3:
                raise CapsError(f"bad command grant '{' '.join(words)}'")
            out.append(Grant(frozenset(), command=words[2]))
            continue
        perms, rest = _perms(words[1]), words[2:]
        fields = _key_values(rest)
        allowed = {"osd": {"pool", "namespace"}, "mds": {"path"}, "mon": set()}[service]
        bad = set(fields) - allowed
        if bad:
            raise CapsError(f"'{sorted(bad)[0]}' is not a {service} cap qualifier")
        path = fields.get("path", "")
        if path:
            path = posixpath.normpath("/" + path.strip("/"))
        out.append(Grant(perms, pool=fields.get("pool", ""),
                         namespace=fields.get("namespace"), path="" if path == "/" else path))
    return tuple(out)


def _key_values(words: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while i < len(words):
        if i + 2 < len(words) + 0 and words[i + 1] == "=":
            out[words[i]] = words[i + 2]
            i += 3
        elif i + 1 < len(words) and words[i] in ("pool", "namespace", "path"):
            out[words[i]] = words[i + 1]  # Ceph also takes `pool foo`
            i += 2
        else:
            raise CapsError(f"unexpected '{words[i]}'")
    return out


def validate(caps: dict[str, str]) -> None:
    for service, text in caps.items():
        parse(service, text)


# -- the mon: commands and daemon messages
# Which mon commands only read (Ceph's MonCommands.h marks each "r" or "rw"); every other one
# needs w. `auth` commands need x as well (Ceph: "auth get" is rx, "auth get-or-create" rwx).
READ_COMMANDS = {
    ("fs", "ls"), ("fs", "get"), ("fs", "dump"), ("fs", "status"), ("fs", "lsflags"),
    ("mds", "stat"), ("mds", "metadata"), ("mds", "ok-to-stop"), ("health",), ("status",),
    ("log", "last"), ("osd", "dump"), ("osd", "pool", "ls"), ("osd", "blocklist", "ls"),
    ("config", "get"), ("config", "dump"), ("nfs", "cluster", "ls"), ("nfs", "cluster", "info"),
    ("auth", "get"), ("auth", "ls"), ("auth", "print-key"), ("auth", "export"),
}
# What a profile grants on the mon: the daemons' own messages and reading the maps.
MON_PROFILES = {"mds": "rw", "osd": "rw", "client": "r", "nfs": "r", "admin": "rwx"}


def command_need(words: list[str]) -> set[str]:
    words = [w for w in words if not w.startswith("--")]
    for n in (3, 2, 1):
        if tuple(words[:n]) in READ_COMMANDS:
            return {"r", "x"} if words[0] == "auth" else {"r"}
    return {"r", "w", "x"} if words[:1] == ["auth"] else {"r", "w"}


@dataclass(frozen=True)
class MonCaps:
    grants: tuple[Grant, ...] = ()

    @classmethod
    def parse(cls, text: str) -> MonCaps:
        return cls(parse("mon", text)) if text else cls()

    def allows_command(self, words: list[str]) -> bool:
        need = command_need(words)
        prefix = " ".join(w for w in words if not w.startswith("--"))
        have: set[str] = set()
        for g in self.grants:
            if g.command and (prefix == g.command or prefix.startswith(g.command + " ")):
                return True
            have |= g.perms | set(MON_PROFILES.get(g.profile, ""))
        return need <= have

    def allows(self, need: set[str]) -> bool:
        have: set[str] = set()
        for g in self.grants:
            have |= g.perms | set(MON_PROFILES.get(g.profile, ""))
        return need <= have

    def has_profile(self, profile: str) -> bool:
        return any(g.profile == profile for g in self.grants) or \
            all(p in self._perms() for p in "rwx")

    def _perms(self) -> set[str]:
        out: set[str] = set()
        for g in self.grants:
            out |= g.perms
        return out


@dataclass(frozen=True)
class OSDCaps:
    grants: tuple[Grant, ...] = ()

    @classmethod
    def parse(cls, text: str) -> OSDCaps:
        return cls(parse("osd", text)) if text else cls()

    def allows(self, pool: str, namespace: str, need: set[str]) -> bool:
        have: set[str] = set()
        for g in self.grants:
            if g.profile in ("mds", "osd", "admin"):
                return True
            if g.pool and g.pool != pool:
                continue
            if g.namespace is not None and g.namespace != namespace:
                continue
            have |= g.perms
        return need <= have


@dataclass(frozen=True)
class MDSCaps:
    grants: tuple[Grant, ...] = ()

    @classmethod
    def parse(cls, text: str) -> MDSCaps:
        return cls(parse("mds", text)) if text else cls()

    def allows(self, path: str, need: set[str]) -> bool:
        """`path` absolute; a grant for /dir covers /dir and what is below it."""
        path = posixpath.normpath("/" + path.strip("/"))
        have: set[str] = set()
        for g in self.grants:
            if g.profile in ("mds", "admin"):
                return True
            if g.path and not (path == g.path or path.startswith(g.path + "/")):
                continue
            have |= g.perms
        return need <= have

    def may_mount(self, root: str) -> bool:
        """A session for `root` needs a grant at or above it (Ceph refuses a client whose
        caps are all below the root it asks for)."""
        return self.allows(root, {"r"})

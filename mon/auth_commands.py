"""`auth ...` commands with Ceph's output and errors (Ceph's AuthMonitor::prepare_command and
preprocess_command): get-or-create, get, get-key/print-key, ls, del/rm, caps, add, import.

`run(auth, args, fmt)` returns (rc, outs, outb); it changes `auth` in place and sets
`auth.dirty` when it did (the shell persists it). `auth import -i FILE` arrives with the
file's text as the argument after `-i` (the CLI reads the file, as Ceph's sends it as input).
"""

from __future__ import annotations

import errno
import json
import re

from common import caps, keyring
from common.keyring import Entry, KeyringError
from mon.auth_monitor import AuthMonitor

Result = tuple[int, str, str]
MON_ENTITY = "mon."
ENTITY_RE = re.compile(r"^(mds|client|osd|mon|mgr)\.[A-Za-z0-9_.\-]+$")


class _Err(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def _entity(name: str) -> str:
    if name != MON_ENTITY and not ENTITY_RE.match(name):
        raise _Err(errno.EINVAL, f"bad entity name '{name}'")
    return name


def _caps(words: list[str]) -> dict[str, str]:
    """`mon 'allow r' osd 'allow rw pool=x'` -> {"mon": ..., "osd": ...}, validated."""
    if len(words) % 2:
        raise _Err(errno.EINVAL, "caps must be given as pairs of service and cap string")
    out = dict(zip(words[::2], words[1::2], strict=True))
    try:
        caps.validate(out)
    except caps.CapsError as e:
        raise _Err(errno.EINVAL, f"Error EINVAL: {e}") from None
    return out


def _dump(entity: str, e: Entry) -> dict:
    return {"entity": entity, "key": e.key, "caps": dict(sorted(e.caps.items()))}


def _out(fmt: str, obj) -> str:
    return json.dumps(obj, indent=4 if fmt == "json-pretty" else None,
                      separators=None if fmt == "json-pretty" else (",", ":"))


def run(auth: AuthMonitor, args: list[str], fmt: str = "plain") -> Result:
    try:
        return _run(auth, args, fmt)
    except _Err as e:
        return -e.code, str(e), ""


def _run(auth: AuthMonitor, args: list[str], fmt: str) -> Result:
    verb = args[1] if len(args) > 1 else ""
    rest = args[2:]
    js = fmt in ("json", "json-pretty")
    db = auth.entities
    if verb == "ls":
        if js:
            return 0, "", _out(fmt, {"auth_dump": [_dump(n, e) for n, e in sorted(db.items())]})
        lines = []
        for name, e in sorted(db.items()):
            lines += [name, f"\tkey: {e.key}"]
            lines += [f"\tcaps: [{svc}] {text}" for svc, text in sorted(e.caps.items())]
        return 0, "installed auth entries:", "\n".join(lines)
    if verb in ("get", "export") and len(rest) <= 1:
        if not rest:
            return 0, "", keyring.render(dict(sorted(db.items()))) if db else ""
        name = _entity(rest[0])
        if name not in db:
            raise _Err(errno.ENOENT, f"failed to find {name} in keyring")
        if js:
            return 0, "", _out(fmt, [_dump(name, db[name])])
        return 0, f"exported keyring for {name}", keyring.render({name: db[name]})
    if verb in ("get-key", "print-key", "print_key"):
        if len(rest) != 1:
            raise _Err(errno.EINVAL, f"invalid command; usage: auth {verb} <entity>")
        name = _entity(rest[0])
        if name not in db:
            raise _Err(errno.ENOENT, f"don't have {name}")
        return 0, "", db[name].key
    if verb in ("get-or-create", "get-or-create-key", "add"):
        if not rest:
            raise _Err(errno.EINVAL, f"invalid command; usage: auth {verb} <entity> "
                                     f"[<caps> ...]")
        name, want = _entity(rest[0]), _caps(rest[1:])
        have = db.get(name)
        if have is not None:
            for svc, text in want.items():
                if have.caps.get(svc) != text:
                    raise _Err(errno.EINVAL, f"key for {name} exists but cap {svc} does not "
                                             f"match")
            if verb == "add":
                return 0, f"entity {name} exists", ""
        else:
            have = db[name] = Entry(keyring.new_key(), want)
            auth.dirty = True
        if verb == "add":
            return 0, f"added key for {name}", ""
        if verb == "get-or-create-key":
            return 0, "", have.key
        if js:
            return 0, "", _out(fmt, [{"entity": name, "key": have.key}])
        return 0, "", keyring.render({name: Entry(have.key)})
    if verb in ("del", "rm"):
        if len(rest) != 1:
            raise _Err(errno.EINVAL, f"invalid command; usage: auth {verb} <entity>")
        name = _entity(rest[0])
        if name not in db:
            return 0, f"entity {name} does not exist", ""
        del db[name]
        auth.dirty = True
        return 0, "updated", ""
    if verb == "caps":
        if not rest:
            raise _Err(errno.EINVAL, "invalid command; usage: auth caps <entity> <caps> ...")
        name, want = _entity(rest[0]), _caps(rest[1:])
        if name not in db:
            raise _Err(errno.ENOENT, f"couldn't find entry {name}")
        db[name].caps = want
        auth.dirty = True
        return 0, f"updated caps for {name}", ""
    if verb == "import":
        if len(rest) != 2 or rest[0] != "-i":
            raise _Err(errno.EINVAL, "invalid command; usage: auth import -i <file>")
        try:
            entries = keyring.parse(rest[1])
        except KeyringError as e:
            raise _Err(errno.EINVAL, f"error parsing keyring: {e}") from None
        if not entries:
            raise _Err(errno.EINVAL, "no entities in the keyring")
        try:
            for e in entries.values():
                caps.validate(e.caps)
        except caps.CapsError as e:
            raise _Err(errno.EINVAL, f"Error EINVAL: {e}") from None
        auth.import_entries(entries)
        return 0, "imported keyring", ""
    raise _Err(errno.EINVAL, f"invalid command; unknown auth verb '{verb}'")

"""ganesha.conf as NFS-Ganesha reads it, for the blocks an mdsemu gateway uses (sans-IO).

Syntax: `NAME { Key = value; ... }` blocks, nested blocks (`EXPORT { FSAL { Name = CEPH; } }`),
values that are bare words, numbers, "quoted" or 'quoted' strings or comma lists, `#`
comments. Block and key names are case-insensitive. Unknown blocks and keys are reported as
warnings and otherwise ignored (Ganesha logs them and carries on); a syntax error or a bad
value is a GaneshaConfError naming the file and line, as Ganesha's "Config File (path:line)".

Blocks read: NFS_CORE_PARAM (NFS_Port, Protocols, Enable_NLM, Enable_RQUOTA), NFSv4
(RecoveryBackend, Grace_Period, Lease_Lifetime, Minor_Versions, Graceless), RADOS_KV (pool,
namespace, nodeid, grace_oid, ceph_conf, userid) and EXPORT (Export_ID, Path, Pseudo,
Access_Type, Protocols, Transports, FSAL { Name }). Defaults and ranges are Ganesha's
(ganesha-core-config, ganesha-export-config).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

RECOVERY_BACKENDS = ("fs", "fs_ng", "rados_kv", "rados_ng", "rados_cluster")
_TOKEN = re.compile(r'\s+|#[^\n]*|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|[{};=,]|[^\s{};=,#"\']+')
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class GaneshaConfError(Exception):
    def __init__(self, path: str, line: int, problem: str) -> None:
        super().__init__(f"Config File ({path}:{line}): {problem}")
        self.line = line


@dataclass
class Block:
    name: str  # as written
    line: int
    params: dict[str, tuple[list[str], int]] = field(default_factory=dict)  # lower key -> (values, line)
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Export:
    export_id: int
    path: str
    pseudo: str
    access_type: str = "None"
    protocols: tuple[int, ...] = (3, 4)
    transports: tuple[str, ...] = ("UDP", "TCP")
    fsal: str = ""


@dataclass
class GaneshaConfig:
    nfs_port: int = 2049
    protocols: tuple[int, ...] = (3, 4)
    enable_nlm: bool = True
    enable_rquota: bool = True
    recovery_backend: str = "fs"
    grace_period: int = 90
    lease_lifetime: int = 60
    minor_versions: tuple[int, ...] = (0, 1, 2)
    graceless: bool = False
    pool: str = "nfs-ganesha"
    namespace: str = ""
    nodeid: str = ""  # "": the hostname
    grace_oid: str = "grace"
    ceph_conf: str = ""
    userid: str = ""
    exports: list[Export] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_blocks(text: str, path: str = "ganesha.conf") -> list[Block]:
    """The block tree of a config text; GaneshaConfError on a syntax error."""
    tokens: list[tuple[str, int]] = []
    line, pos = 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise GaneshaConfError(path, line, f"unexpected character {text[pos]!r}")
        tok = m.group()
        if not tok.isspace() and not tok.startswith("#"):
            tokens.append((tok, line))
        line += tok.count("\n")
        pos = m.end()
    top = Block("", 0)
    stack = [top]
    i = 0
    while i < len(tokens):
        tok, ln = tokens[i]
        nxt = tokens[i + 1][0] if i + 1 < len(tokens) else ""
        if tok == "}":
            if len(stack) == 1:
                raise GaneshaConfError(path, ln, "unexpected '}'")
            stack.pop()
            i += 1
            if i < len(tokens) and tokens[i][0] == ";":
                i += 1
        elif _word(tok) and nxt == "{":
            block = Block(tok, ln)
            stack[-1].blocks.append(block)
            stack.append(block)
            i += 2
        elif _word(tok) and nxt == "=":
            if len(stack) == 1:
                raise GaneshaConfError(path, ln, f"parameter '{tok}' outside a block")
            values, i = _values(tokens, i + 2, path, ln)
            stack[-1].params[tok.lower()] = (values, ln)
        else:
            raise GaneshaConfError(path, ln, f"syntax error at '{tok}'")
    if len(stack) > 1:
        raise GaneshaConfError(path, stack[-1].line, f"block '{stack[-1].name}' is not closed")
    return top.blocks


def _word(tok: str) -> bool:
    return tok not in "{};=," and tok[0] not in "\"'"


def _values(tokens, i: int, path: str, ln: int) -> tuple[list[str], int]:
    values: list[str] = []
    while True:
        if i >= len(tokens) or tokens[i][0] in "{}=;,":
            raise GaneshaConfError(path, ln, "missing value")
        tok = tokens[i][0]
        values.append(tok[1:-1] if tok[0] in "\"'" else tok)
        i += 1
        if i < len(tokens) and tokens[i][0] == ",":
            i += 1
            continue
        if i < len(tokens) and tokens[i][0] == ";":
            return values, i + 1
        if i < len(tokens) and tokens[i][0] == "}":
            return values, i  # the last parameter of a block may omit its ';'
        raise GaneshaConfError(path, ln, "expected ';' after the value")


# -- typed values
def _one(values: list[str], key: str, path: str, ln: int) -> str:
    if len(values) != 1:
        raise GaneshaConfError(path, ln, f"{key} takes one value")
    return values[0]


def _int(values, key, path, ln, lo: int, hi: int) -> int:
    text = _one(values, key, path, ln)
    try:
        n = int(text, 0)
    except ValueError:
        raise GaneshaConfError(path, ln, f"{key}: '{text}' is not a number") from None
    if not lo <= n <= hi:
        raise GaneshaConfError(path, ln, f"{key}: {n} is out of range ({lo} to {hi})")
    return n


def _bool(values, key, path, ln) -> bool:
    text = _one(values, key, path, ln).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise GaneshaConfError(path, ln, f"{key}: '{text}' is not a boolean")


def _ints(values, key, path, ln, allowed: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for v in values:
        v = v.lower().removeprefix("nfsv").removeprefix("v")
        if not v.isdigit() or int(v) not in allowed:
            raise GaneshaConfError(path, ln, f"{key}: '{v}' is not one of {allowed}")
        out.append(int(v))
    return tuple(out)


def load_text(text: str, path: str = "ganesha.conf") -> GaneshaConfig:
    conf = GaneshaConfig()
    for block in parse_blocks(text, path):
        kind = block.name.lower()
        if kind == "nfs_core_param":
            _core(conf, block, path)
        elif kind == "nfsv4":
            _nfsv4(conf, block, path)
        elif kind == "rados_kv":
            _rados_kv(conf, block, path)
        elif kind == "export":
            conf.exports.append(_export(conf, block, path))
        else:
            conf.warnings.append(f"{path}:{block.line}: block '{block.name}' is not used")
    ids = [e.export_id for e in conf.exports]
    if len(ids) != len(set(ids)):
        raise GaneshaConfError(path, 0, "duplicate Export_ID")
    return conf


def load(path: str) -> GaneshaConfig:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise GaneshaConfError(path, 0, f"cannot read: {getattr(e, 'strerror', None) or e}") \
            from None
    return load_text(text, path)


def _unknown(conf: GaneshaConfig, block: Block, known: set[str], path: str) -> None:
    for key, (_, ln) in block.params.items():
        if key not in known:
            conf.warnings.append(f"{path}:{ln}: unknown parameter '{key}' in {block.name}")
    for sub in block.blocks:
        conf.warnings.append(f"{path}:{sub.line}: block '{sub.name}' is not used")


def _core(conf: GaneshaConfig, b: Block, path: str) -> None:
    p = b.params
    if "nfs_port" in p:
        conf.nfs_port = _int(*p["nfs_port"][:1], "NFS_Port", path, p["nfs_port"][1], 0, 65535)
    if "protocols" in p:
        conf.protocols = _ints(p["protocols"][0], "Protocols", path, p["protocols"][1], (3, 4))
    if "enable_nlm" in p:
        conf.enable_nlm = _bool(p["enable_nlm"][0], "Enable_NLM", path, p["enable_nlm"][1])
    if "enable_rquota" in p:
        conf.enable_rquota = _bool(p["enable_rquota"][0], "Enable_RQUOTA", path,
                                   p["enable_rquota"][1])
    _unknown(conf, b, {"nfs_port", "protocols", "enable_nlm", "enable_rquota"}, path)


def _nfsv4(conf: GaneshaConfig, b: Block, path: str) -> None:
    p = b.params
    if "recoverybackend" in p:
        values, ln = p["recoverybackend"]
        backend = _one(values, "RecoveryBackend", path, ln).lower()
        if backend not in RECOVERY_BACKENDS:
            raise GaneshaConfError(path, ln, f"RecoveryBackend: '{backend}' is not one of "
                                             f"{', '.join(RECOVERY_BACKENDS)}")
        conf.recovery_backend = backend
    if "grace_period" in p:
        conf.grace_period = _int(*p["grace_period"][:1], "Grace_Period", path,
                                 p["grace_period"][1], 0, 180)
    if "lease_lifetime" in p:
        conf.lease_lifetime = _int(*p["lease_lifetime"][:1], "Lease_Lifetime", path,
                                   p["lease_lifetime"][1], 1, 120)
    if "minor_versions" in p:
        conf.minor_versions = _ints(p["minor_versions"][0], "Minor_Versions", path,
                                    p["minor_versions"][1], (0, 1, 2))
    if "graceless" in p:
        conf.graceless = _bool(p["graceless"][0], "Graceless", path, p["graceless"][1])
    _unknown(conf, b, {"recoverybackend", "grace_period", "lease_lifetime", "minor_versions",
                       "graceless"}, path)


def _rados_kv(conf: GaneshaConfig, b: Block, path: str) -> None:
    names = {"pool": "pool", "namespace": "namespace", "nodeid": "nodeid",
             "grace_oid": "grace_oid", "ceph_conf": "ceph_conf", "userid": "userid"}
    for key, attr in names.items():
        if key in b.params:
            values, ln = b.params[key]
            setattr(conf, attr, _one(values, key, path, ln))
    _unknown(conf, b, set(names), path)


def _export(conf: GaneshaConfig, b: Block, path: str) -> Export:
    p = b.params
    if "export_id" in p:
        export_id = _int(*p["export_id"][:1], "Export_ID", path, p["export_id"][1], 0, 65535)
    else:  # Ganesha requires it; mdsemu lets the seed's example (which has none) load
        export_id = len(conf.exports) + 1
        conf.warnings.append(f"{path}:{b.line}: EXPORT without Export_ID: using {export_id}")
    for key in ("path", "pseudo"):
        if key not in p:
            raise GaneshaConfError(path, b.line, f"EXPORT: mandatory parameter {key} is missing")
    exp = Export(export_id, _one(*p["path"][:1], "Path", path, p["path"][1]),
                 _one(*p["pseudo"][:1], "Pseudo", path, p["pseudo"][1]))
    if "access_type" in p:
        values, ln = p["access_type"]
        access = _one(values, "Access_Type", path, ln).upper()
        if access not in ("RW", "RO", "MDONLY", "MDONLY_RO", "NONE"):
            raise GaneshaConfError(path, ln, f"Access_Type: '{access}' is not valid")
        exp.access_type = access
    if "protocols" in p:
        exp.protocols = _ints(p["protocols"][0], "Protocols", path, p["protocols"][1], (3, 4))
    if "transports" in p:
        exp.transports = tuple(v.upper() for v in p["transports"][0])
    for sub in b.blocks:
        if sub.name.lower() == "fsal" and "name" in sub.params:
            values, ln = sub.params["name"]
            exp.fsal = _one(values, "Name", path, ln).upper()
    if not exp.fsal:
        raise GaneshaConfError(path, b.line, "EXPORT: an FSAL block with a Name is required")
    known = {"export_id", "path", "pseudo", "access_type", "protocols", "transports",
             "attr_expiration_time", "squash", "sectype"}
    for key, (_, ln) in p.items():
        if key not in known:
            conf.warnings.append(f"{path}:{ln}: unknown parameter '{key}' in EXPORT")
    return exp

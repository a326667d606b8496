"""A rank's metadata namespace, sans-IO: inodes, dentries and the requests on them.

Every mutation is split in two, as a journaled MDS needs: `prepare(op, args, now)` checks the
request against the current namespace and returns an event (a plain dict holding everything,
allocated inode numbers and stamps included), and applying it changes the namespace. The
active applies at once and journals the event; replay applies the same events from the journal
and reaches the same state, because applying decides nothing (`mds.applier` applies every event
type; `apply_update` here is the part for local updates). Applying is also idempotent and
tolerant (it checks inode numbers before it unlinks), so replaying a journal tail onto directory
objects written back after some of those events still converges on the live state; directory
link counts are derived (2 + subdirectories), not counted.
"""

from __future__ import annotations

import errno
import stat
from dataclasses import dataclass, field

ROOT_INO = 1
FIRST_INO = 0x10000000000  # Ceph hands out client inode numbers from here


class FSError(Exception):
    """A request the namespace refuses, with a POSIX errno."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message or errno.errorcode.get(code, str(code)))
        self.code = code


@dataclass
class Inode:
    ino: int
    mode: int
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: float = 0.0
    ctime: float = 0.0
    nlink: int = 1
    xattrs: dict[str, str] = field(default_factory=dict)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    def to_wire(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_wire(cls, d: dict) -> Inode:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def split(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise FSError(errno.EINVAL, "'..' is not supported")
    return parts


def ino_range(rank: int) -> tuple[int, int]:
    """The inode numbers rank `rank` hands out (each rank its own range, as Ceph's inotable)."""
    return FIRST_INO * (rank + 1), FIRST_INO * (rank + 2)


_APPLY = {"mkdir": "_apply_mkdir", "create": "_apply_create", "unlink": "_apply_unlink",
          "rmdir": "_apply_unlink", "rename": "_apply_rename", "setattr": "_apply_setattr"}


class Namespace:
    def __init__(self, now: float = 0.0, rank: int = 0) -> None:
        self.inodes: dict[int, Inode] = {
            ROOT_INO: Inode(ROOT_INO, stat.S_IFDIR | 0o755, mtime=now, ctime=now, nlink=2)
        }
        self.dentries: dict[int, dict[str, int]] = {ROOT_INO: {}}  # dir ino -> name -> ino
        self.parent: dict[int, int] = {ROOT_INO: ROOT_INO}  # ino -> dir holding its dentry
        self.dname: dict[int, str] = {}  # ino -> its name there (an inode has one link)
        self.rank = rank
        self.next_ino = ino_range(rank)[0]
        # Subtrees (multi-active, see mds.subtree): the directories whose contents this rank
        # is authoritative for from there down, and those it handed to another rank.
        self.auth_roots: set[int] = {ROOT_INO} if rank == 0 else set()
        self.exported: dict[int, int] = {}  # dir ino -> rank now holding its contents
        self.imported: dict[int, list] = {}  # dir ino -> [from rank, export id]
        # Cross-rank operations (mds.xrank): prepared here as a witness, and committed here
        # as the master but not yet at the witness.
        self.xpeer: dict[str, dict] = {}
        self.xmaster: dict[str, int] = {}

    def _saw_ino(self, ino: int) -> None:
        lo, hi = ino_range(self.rank)
        if lo <= ino < hi:
            self.next_ino = max(self.next_ino, ino + 1)

    # -- lookups
    def resolve(self, path: str) -> Inode:
        ino = ROOT_INO
        for name in split(path):
            node = self.inodes[ino]
            if not node.is_dir:
                raise FSError(errno.ENOTDIR, path)
            child = self.dentries[ino].get(name)
            if child is None:
                raise FSError(errno.ENOENT, path)
            ino = child
        return self.inodes[ino]

    def parent_of(self, path: str) -> tuple[Inode, str]:
        parts = split(path)
        if not parts:
            raise FSError(errno.EEXIST if path.strip("/") == "" else errno.EINVAL, path)
        parent = self.resolve("/".join(parts[:-1]))
        if not parent.is_dir:
            raise FSError(errno.ENOTDIR, path)
        return parent, parts[-1]

    def stat(self, node: Inode) -> dict:
        d = node.to_wire()
        if node.is_dir:
            d["nlink"] = 2 + sum(self.inodes[c].is_dir for c in self.dentries[node.ino].values())
        return d

    def readdir(self, path: str) -> list[tuple[str, Inode]]:
        node = self.resolve(path)
        if not node.is_dir:
            raise FSError(errno.ENOTDIR, path)
        return [(n, self.inodes[i]) for n, i in sorted(self.dentries[node.ino].items())]

    def path_of(self, ino: int) -> str:
        parts = []
        while ino != ROOT_INO:
            parts.append(self.dname[ino])
            ino = self.parent[ino]
        return "/" + "/".join(reversed(parts))

    def __len__(self) -> int:
        return len(self.inodes)

    # -- requests: check and describe (no change yet)
    def prepare(self, op: str, args: dict, now: float) -> dict:
        """Validate a mutation and return its event. Raises FSError."""
        fn = {"mkdir": self._prepare_mkdir, "create": self._prepare_create,
              "unlink": self._prepare_unlink, "rmdir": self._prepare_rmdir,
              "rename": self._prepare_rename, "setattr": self._prepare_setattr}.get(op)
        if fn is None:
            raise FSError(errno.EINVAL, f"unknown operation '{op}'")
        return fn(args, now)

    def _new(self, args: dict, now: float, kind: int, default: int) -> dict:
        parent, name = self.parent_of(args["path"])
        if name in self.dentries[parent.ino]:
            raise FSError(errno.EEXIST, args["path"])
        mode = kind | (int(args.get("mode", default)) & 0o7777)
        return {"op": "mkdir" if kind == stat.S_IFDIR else "create", "parent": parent.ino,
                "name": name, "ino": self.next_ino, "mode": mode,
                "uid": int(args.get("uid", 0)), "gid": int(args.get("gid", 0)), "stamp": now}

    def _prepare_mkdir(self, args: dict, now: float) -> dict:
        return self._new(args, now, stat.S_IFDIR, 0o755)

    def _prepare_create(self, args: dict, now: float) -> dict:
        return self._new(args, now, stat.S_IFREG, 0o644)

    def _prepare_unlink(self, args: dict, now: float) -> dict:
        node = self.resolve(args["path"])
        if node.is_dir:
            raise FSError(errno.EISDIR, args["path"])
        parent, name = self.parent_of(args["path"])
        return {"op": "unlink", "parent": parent.ino, "name": name, "ino": node.ino,
                "stamp": now}

    def _prepare_rmdir(self, args: dict, now: float) -> dict:
        node = self.resolve(args["path"])
        if not node.is_dir:
            raise FSError(errno.ENOTDIR, args["path"])
        if node.ino == ROOT_INO:
            raise FSError(errno.EBUSY, "/")
        if self.dentries[node.ino]:
            raise FSError(errno.ENOTEMPTY, args["path"])
        parent, name = self.parent_of(args["path"])
        return {"op": "rmdir", "parent": parent.ino, "name": name, "ino": node.ino,
                "stamp": now}

    def _prepare_rename(self, args: dict, now: float) -> dict:
        src = self.resolve(args["src"])
        sparent, sname = self.parent_of(args["src"])
        dparent, dname = self.parent_of(args["dst"])
        if src.is_dir:  # no directory may move under itself
            ino = dparent.ino
            while True:
                if ino == src.ino:
                    raise FSError(errno.EINVAL, "cannot move a directory into itself")
                if ino == ROOT_INO:
                    break
                ino = self.parent[ino]
        replaced = self.dentries[dparent.ino].get(dname)
        if replaced is not None and replaced != src.ino:
            old = self.inodes[replaced]
            if old.is_dir and not src.is_dir:
                raise FSError(errno.EISDIR, args["dst"])
            if src.is_dir and not old.is_dir:
                raise FSError(errno.ENOTDIR, args["dst"])
            if old.is_dir and self.dentries[old.ino]:
                raise FSError(errno.ENOTEMPTY, args["dst"])
        return {"op": "rename", "sparent": sparent.ino, "sname": sname, "dparent": dparent.ino,
                "dname": dname, "ino": src.ino, "replaced": replaced, "stamp": now}

    def _prepare_setattr(self, args: dict, now: float) -> dict:
        node = self.resolve(args["path"])
        attrs = {}
        for key in ("mode", "uid", "gid", "size", "mtime"):
            if key in args:
                value = args[key]
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                    raise FSError(errno.EINVAL, f"bad {key}")
                attrs[key] = value
        if "size" in attrs and node.is_dir:
            raise FSError(errno.EISDIR, args["path"])
        if "mode" in attrs:
            attrs["mode"] = (node.mode & ~0o7777) | (int(attrs["mode"]) & 0o7777)
        return {"op": "setattr", "ino": node.ino, "dir": self.parent[node.ino], "attrs": attrs,
                "xattrs": dict(args.get("xattrs", {})), "stamp": now}

    # -- apply an update (active after prepare; replay from the journal): see mds.applier
    def apply_update(self, ev: dict) -> None:
        """An EUpdate of a local operation onto the namespace."""
        getattr(self, _APPLY[ev["op"]])(ev)  # a table, not a dict of bound methods per event

    def attach(self, parent: int, name: str, node: Inode) -> None:
        """Put an inode under a dentry as it was read back (directory objects, an import).
        An inode has one link: a dentry of ours naming it elsewhere goes (a stub kept by its
        old name above a subtree we hold, which the exporter has renamed since)."""
        old_parent, old_name = self.parent.get(node.ino), self.dname.get(node.ino)
        if old_name is not None and (old_parent, old_name) != (parent, name) and \
                self.dentries.get(old_parent, {}).get(old_name) == node.ino:
            del self.dentries[old_parent][old_name]
        self.inodes[node.ino] = node
        self.dentries[parent][name] = node.ino
        self.parent[node.ino] = parent
        self.dname[node.ino] = name
        if node.is_dir:
            self.dentries.setdefault(node.ino, {})
        self._saw_ino(node.ino)

    def link_dentry(self, parent: int, name: str, ino: int, stamp: float,
              replaces: int | None = None) -> bool:
        """Point dentry (parent, name) at ino. During replay the dentry may already belong to
        an inode from later in the journal; then the later state wins and nothing changes."""
        old = self.dentries[parent].get(name)
        if old is not None and old not in (ino, replaces):
            self._touch(parent, stamp)
            return False
        if ino in self.dname:  # replay may find it still under its later name: move it
            self.dentries.get(self.parent[ino], {}).pop(self.dname[ino], None)
        if old is not None and old != ino:
            self._forget(old)
        self.dentries[parent][name] = ino
        self.parent[ino] = parent
        self.dname[ino] = name
        self._touch(parent, stamp)
        return True

    def unlink_dentry(self, parent: int, name: str, ino: int, stamp: float) -> None:
        entries = self.dentries.get(parent)
        if entries is not None and entries.get(name) == ino:
            del entries[name]
        self._touch(parent, stamp)

    def _touch(self, dir_ino: int, stamp: float) -> None:
        # max(): replaying an older event onto a newer write-back must not move time back
        p = self.inodes.get(dir_ino)
        if p is not None:
            p.mtime = max(p.mtime, stamp)
            p.ctime = max(p.ctime, stamp)

    def _forget(self, ino: int) -> None:
        node = self.inodes.pop(ino, None)
        self.parent.pop(ino, None)
        self.dname.pop(ino, None)
        if node is not None and node.is_dir:
            for child in list(self.dentries.pop(ino, {}).values()):
                self._forget(child)

    def _apply_mkdir(self, ev: dict) -> None:
        self._apply_create(ev)
        if ev["ino"] in self.inodes:
            self.dentries.setdefault(ev["ino"], {})

    def _apply_create(self, ev: dict) -> None:
        if ev["parent"] not in self.dentries:
            return  # the parent went away later in the journal: nothing left to create
        self._saw_ino(ev["ino"])
        occupant = self.dentries[ev["parent"]].get(ev["name"])
        if occupant is not None and occupant != ev["ino"]:
            self._touch(ev["parent"], ev["stamp"])
            return  # the name belongs to a later inode
        if ev["ino"] not in self.inodes:
            self.inodes[ev["ino"]] = Inode(ev["ino"], ev["mode"], ev["uid"], ev["gid"],
                                           mtime=ev["stamp"], ctime=ev["stamp"],
                                           nlink=2 if stat.S_ISDIR(ev["mode"]) else 1)
        self.link_dentry(ev["parent"], ev["name"], ev["ino"], ev["stamp"])

    def _apply_unlink(self, ev: dict) -> None:
        self.unlink_dentry(ev["parent"], ev["name"], ev["ino"], ev["stamp"])
        if self.parent.get(ev["ino"]) == ev["parent"]:
            self._forget(ev["ino"])

    def _apply_rename(self, ev: dict) -> None:
        node = self.inodes.get(ev["ino"])
        if node is None or ev["dparent"] not in self.dentries:
            return
        self.unlink_dentry(ev["sparent"], ev["sname"], ev["ino"], ev["stamp"])
        if not self.link_dentry(ev["dparent"], ev["dname"], ev["ino"], ev["stamp"], ev["replaced"]):
            ino = ev["ino"]
            linked = self.dentries.get(self.parent.get(ino), {}).get(self.dname.get(ino)) == ino
            if not linked:  # superseded by later events and linked nowhere: it is gone
                self._forget(ino)
                return
        node.ctime = max(node.ctime, ev["stamp"])

    def _apply_setattr(self, ev: dict) -> None:
        node = self.inodes.get(ev["ino"])
        if node is None:
            return
        for key, value in ev["attrs"].items():
            setattr(node, key, value)
        node.xattrs.update(ev["xattrs"])
        node.ctime = max(node.ctime, ev["stamp"])

    # -- snapshot form (for directory objects and tests)
    def to_wire(self) -> dict:
        return {"inodes": [self.inodes[i].to_wire() for i in sorted(self.inodes)],
                "dentries": [[d, sorted(self.dentries[d].items())] for d in sorted(self.dentries)],
                "next_ino": self.next_ino, "rank": self.rank,
                "auth_roots": sorted(self.auth_roots),
                "exported": sorted(self.exported.items()),
                "imported": sorted([k, v] for k, v in self.imported.items()),
                "xpeer": self.xpeer, "xmaster": self.xmaster}

    @classmethod
    def from_wire(cls, d: dict) -> Namespace:
        ns = cls(rank=d.get("rank", 0))
        ns.auth_roots = set(d.get("auth_roots", [ROOT_INO] if ns.rank == 0 else []))
        ns.exported = {int(k): v for k, v in d.get("exported", [])}
        ns.imported = {int(k): list(v) for k, v in d.get("imported", [])}
        ns.xpeer = dict(d.get("xpeer", {}))
        ns.xmaster = dict(d.get("xmaster", {}))
        ns.inodes = {i["ino"]: Inode.from_wire(i) for i in d["inodes"]}
        ns.dentries = {int(dir_ino): {n: i for n, i in entries}
                       for dir_ino, entries in d["dentries"]}
        ns.parent = {ROOT_INO: ROOT_INO}
        for dir_ino, entries in ns.dentries.items():
            for name, ino in entries.items():
                ns.parent[ino] = dir_ino
                ns.dname[ino] = name
        ns.next_ino = d["next_ino"]
        return ns

"""Reading `fs dump -f json` (Ceph's layout) and checking what must hold in every map: no two
daemons holding one rank, no name twice, up/in/failed consistent. Used by the local-cluster
harness (client/localcluster.py), the integration tests and bench/."""

from __future__ import annotations


class ClusterError(AssertionError):
    """A wait timed out or an invariant of the map does not hold."""


def filesystems(dump: dict) -> dict[str, dict]:
    return {fs["mdsmap"]["fs_name"]: fs["mdsmap"] for fs in dump["filesystems"]}


def mdsmap(dump: dict, fs: str = "cephfs") -> dict:
    try:
        return filesystems(dump)[fs]
    except KeyError:
        raise ClusterError(f"no filesystem {fs!r} in fs dump epoch {dump.get('epoch')}") from None


def infos(dump: dict) -> list[dict]:
    """Every daemon in the map: rank holders, followers and standbys."""
    out = list(dump["standbys"])
    for fs in dump["filesystems"]:
        out.extend(fs["mdsmap"]["info"].values())
    return out


def info_by_name(dump: dict, name: str) -> dict | None:
    found = [i for i in infos(dump) if i["name"] == name]
    return found[0] if found else None


def info_by_gid(dump: dict, gid: int) -> dict | None:
    found = [i for i in infos(dump) if i["gid"] == gid]
    return found[0] if found else None


def holder(dump: dict, fs: str = "cephfs", rank: int = 0) -> dict | None:
    """The daemon holding `rank` (not its standby-replay follower), in whatever state."""
    m = mdsmap(dump, fs)
    gid = m["up"].get(f"mds_{rank}")
    return m["info"].get(f"gid_{gid}") if gid is not None else None


def active(dump: dict, fs: str = "cephfs", rank: int = 0) -> dict | None:
    """The holder of `rank` if it is up:active, else None."""
    h = holder(dump, fs, rank)
    return h if h is not None and h["state"] == "up:active" else None


def follower(dump: dict, fs: str = "cephfs", rank: int = 0) -> dict | None:
    m = mdsmap(dump, fs)
    for i in m["info"].values():
        if i["state"] == "up:standby-replay" and i["rank"] == rank:
            return i
    return None


def standby_names(dump: dict) -> set[str]:
    return {i["name"] for i in dump["standbys"]}


def all_active(dump: dict, fs: str = "cephfs") -> bool:
    """Every rank in `in` is up and active, and there are max_mds of them."""
    m = mdsmap(dump, fs)
    if sorted(m["in"]) != list(range(m["max_mds"])) or m["failed"] or m["damaged"]:
        return False
    return all(active(dump, fs, r) is not None for r in m["in"])


def check_map(dump: dict) -> None:
    """Invariants of one committed map as users see it; raises ClusterError.

    - no two daemons hold one rank (one holder per rank, plus at most one standby-replay);
    - `up` names daemons of that fs with that rank; `in` = up ∪ failed ∪ damaged;
    - a gid or a daemon name appears at most once in the whole map.
    """
    epoch = dump["epoch"]
    seen_gids: set[int] = set()
    seen_names: set[str] = set()
    for info in infos(dump):
        if info["gid"] in seen_gids:
            raise ClusterError(f"epoch {epoch}: gid {info['gid']} appears twice")
        if info["name"] in seen_names:
            raise ClusterError(f"epoch {epoch}: daemon name {info['name']} appears twice")
        seen_gids.add(info["gid"])
        seen_names.add(info["name"])
    for fs in dump["filesystems"]:
        m = fs["mdsmap"]
        name = m["fs_name"]
        holders: dict[int, list[int]] = {}
        followers: dict[int, list[int]] = {}
        for key, info in m["info"].items():
            if key != f"gid_{info['gid']}":
                raise ClusterError(f"epoch {epoch}: {name} info key {key} vs gid {info['gid']}")
            target = followers if info["state"] == "up:standby-replay" else holders
            target.setdefault(info["rank"], []).append(info["gid"])
        for rank, gids in list(holders.items()) + list(followers.items()):
            if len(gids) > 1:
                raise ClusterError(f"epoch {epoch}: {name} rank {rank} held by gids {gids}")
        up = {int(k.removeprefix("mds_")): g for k, g in m["up"].items()}
        if {r: [g] for r, g in up.items()} != holders:
            raise ClusterError(f"epoch {epoch}: {name} up {up} does not match the rank "
                               f"holders in info {holders}")
        if set(m["in"]) != set(up) | set(m["failed"]) | set(m["damaged"]):
            raise ClusterError(f"epoch {epoch}: {name} in {m['in']} != up {sorted(up)} + "
                               f"failed {m['failed']} + damaged {m['damaged']}")
        if set(m["in"]) & set(m["stopped"]):
            raise ClusterError(f"epoch {epoch}: {name} ranks both in and stopped")
        for rank in followers:
            if rank not in up:
                raise ClusterError(f"epoch {epoch}: {name} follower of rank {rank}, not up")

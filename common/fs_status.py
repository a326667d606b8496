"""`fs status` as the mgr's status module prints it (`handle_fs_status`, ref O5): the rank,
standby and pool tables, plain and JSON. Pure code: no clock, no I/O.
"""

from __future__ import annotations

from common import states
from common.fsmap import FSMap, MDSInfo, MDSMap
from common.render import DEFAULT_VERSION, fs_list, pool_name


def _units(n: float, width: int, factor: int) -> str:
    """mgr_util.format_units: fit the integer part in width-1 columns, then a unit letter."""
    units = " kMGTPE"
    unit = 0
    while len(str(int(n) // factor**unit)) > width - 1:
        unit += 1
    if unit == 0:
        return f"{int(n):{width - 1}d} "
    text = f"{n / factor**unit:f}"[: width - 1]
    if text.endswith("."):
        text = " " + text[:-1]
    return text + units[unit]


def format_dimless(n: float, width: int = 5) -> str:
    """Counts and rates, e.g. 85200 -> "85.2k", 12 -> "  12 "."""
    return _units(n, width, 1000)


def format_bytes(n: float, width: int = 5) -> str:
    return _units(n, width, 1024)


def _center(text: str, width: int) -> str:
    """PrettyTable's centring: an odd spare column goes right of odd-length text."""
    spare = width - len(text)
    left = spare // 2
    if spare % 2 and len(text) % 2 == 0:
        left += 1
    return " " * left + text + " " * (spare - left)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A borderless PrettyTable (no left padding, two spaces right), trailing spaces cut."""
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=False)]
    return [
        "".join(_center(c, w) + "  " for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def _version(stats: dict[int, dict], gid: int) -> str:
    v = str(stats.get(gid, {}).get("version") or DEFAULT_VERSION)
    return v if v.startswith("mdsemu") else f"mdsemu {v}"


def _selected(fsmap: FSMap, fs_names: list[str] | None) -> list[MDSMap]:
    """The file systems to show: all, or those named."""
    fss = fs_list(fsmap)
    return fss if fs_names is None else [fs for fs in fss if fs.fs_name in fs_names]


class _FsStatus:
    """The rows of one `fs status` report, shared by the plain and JSON renderers."""

    def __init__(self, fsmap: FSMap, fs_names, pool_names, stats) -> None:
        self.fsmap, self.pool_names, self.stats = fsmap, pool_names, stats
        self.filesystems = _selected(fsmap, fs_names)
        self.versions: dict[str, list[str]] = {}

    def stat(self, gid: int, key: str):
        return self.stats.get(gid, {}).get(key, 0)

    def seen(self, info: MDSInfo) -> None:
        self.versions.setdefault(_version(self.stats, info.gid), []).append(info.name)

    def clients(self, fs: MDSMap) -> int:
        count = 0
        for rank in sorted(fs.up):
            if rank == 0 or count == 0:
                count = int(self.stat(fs.up[rank], "clients"))
        return count

    def ranks(self, fs: MDSMap) -> list[dict]:
        """One dict per rank in `in` (failed ones too), then the followers as "<r>-s"."""
        rows = []
        for rank in sorted(fs.in_):
            info = fs.holder(rank)
            if info is None:
                rows.append({"rank": rank, "state": "failed"})
                continue
            self.seen(info)
            state = states.name(info.state).split(":", 1)[1] + ("(laggy)" if info.laggy else "")
            rows.append({"rank": rank, "info": info, "state": state})
        for info in sorted(fs.followers(), key=lambda i: (i.rank, i.gid)):
            self.seen(info)
            rows.append({"rank": info.rank, "info": info, "state": "standby-replay"})
        return rows

    def pools(self, fs: MDSMap) -> list[tuple[int, str, str]]:
        kinds = [(fs.metadata_pool, "metadata")] + [(p, "data") for p in fs.data_pools]
        return [(p, pool_name(self.pool_names, p), kind) for p, kind in kinds]

    def standbys(self) -> list[MDSInfo]:
        infos = [self.fsmap.standby_daemons[g] for g in sorted(self.fsmap.standby_daemons)]
        for info in infos:
            self.seen(info)
        return infos


def _rank_cells(st: _FsStatus, row: dict) -> list[str]:
    info = row.get("info")
    if info is None:
        return [str(row["rank"]), "failed", "", "", "", "", "", ""]
    g = info.gid
    if row["state"] == "standby-replay":
        rank, activity = f"{row['rank']}-s", f"Evts: {format_dimless(st.stat(g, 'evt_rate'))}/s"
    else:
        rank, activity = str(row["rank"]), ""
        if row["state"] == "active":
            activity = f"Reqs: {format_dimless(st.stat(g, 'req_rate'))}/s"
    counts = [format_dimless(st.stat(g, k)) for k in ("dns", "inos", "dirs", "caps")]
    return [rank, row["state"], info.name, activity, *counts]


def _table_text(header: list[str], rows: list[list[str]]) -> str:
    """A borderless PrettyTable prints nothing at all, not even its header, without rows."""
    return "\n".join(_table(header, rows)) if rows else ""


def fs_status_plain(
    fsmap: FSMap,
    fs_names: list[str] | None,
    pool_names: dict[int, str],
    stats: dict[int, dict],
) -> str:
    """`ceph fs status [fs]`: rank table, pool table, standbys, versions (O5), laid out as the
    mgr's handle_fs_status joins them. ValueError("Invalid filesystem: X") for an unknown fs."""
    st = _FsStatus(fsmap, fs_names, pool_names, stats)
    out = ""
    header = ["RANK", "STATE", "MDS", "ACTIVITY", "DNS", "INOS", "DIRS", "CAPS"]
    for fs in st.filesystems:
        rows = [_rank_cells(st, r) for r in st.ranks(fs)]
        pools = [[name, kind, format_bytes(0), format_bytes(0)] for _, name, kind in st.pools(fs)]
        out += f"{fs.fs_name} - {st.clients(fs)} clients\n" + "=" * len(fs.fs_name) + "\n"
        out += _table_text(header, rows)
        out += "\n" + _table_text(["POOL", "TYPE", "USED", "AVAIL"], pools) + "\n"
    if not out and fs_names:
        raise ValueError(f"Invalid filesystem: {fs_names[0]}")
    # a blank line before the standbys (which print nothing when there are none)
    out += "\n" + _table_text(["STANDBY MDS"], [[i.name] for i in st.standbys()]) + "\n"
    if len(st.versions) == 1:
        out += f"MDS version: {next(iter(st.versions))}"
    else:
        versions = [[v, ", ".join(d)] for v, d in st.versions.items()]
        out += _table_text(["VERSION", "DAEMONS"], versions) + "\n"
    return out.removesuffix("\n")  # the CLI ends the output with a newline


def fs_status_json(
    fsmap: FSMap,
    fs_names: list[str] | None,
    pool_names: dict[int, str],
    stats: dict[int, dict],
) -> dict:
    """`ceph fs status -f json`: the mgr's keys, sorted as it dumps them. An unknown fs is no
    error here (the mgr only checks for one in plain output): it just lists nothing."""
    st = _FsStatus(fsmap, fs_names, pool_names, stats)
    clients, mdsmap, pools = [], [], []
    for fs in st.filesystems:
        for row in st.ranks(fs):
            info = row.get("info")
            entry = {"rank": row["rank"], "state": row["state"]}
            if info is not None:
                entry["name"] = info.name
                for k in ("dns", "inos", "dirs", "caps"):
                    entry[k] = st.stat(info.gid, k)
                if row["state"] == "standby-replay":
                    entry["rank"] = f"{row['rank']}-s"
                    entry["events"] = st.stat(info.gid, "evt_rate")
                elif row["state"] == "active":
                    entry["rate"] = st.stat(info.gid, "req_rate")
                else:
                    entry["rate"] = "0"  # sic: Ceph's mgr reports a string here
            mdsmap.append(_sorted(entry))
        for pool, name, kind in st.pools(fs):
            pools.append({"avail": 0, "id": pool, "name": name, "type": kind, "used": 0})
        clients.append({"clients": st.clients(fs), "fs": fs.fs_name})
    mdsmap += [{"name": i.name, "state": "standby"} for i in st.standbys()]
    # sic: one version is listed under "daemon", several under "daemons" (the mgr's keys)
    key = "daemon" if len(st.versions) == 1 else "daemons"
    versions = [{key: names, "version": v} for v, names in st.versions.items()]
    return {"clients": clients, "mds_version": versions, "mdsmap": mdsmap, "pools": pools}


def _sorted(d: dict) -> dict:
    return {k: d[k] for k in sorted(d)}

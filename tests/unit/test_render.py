"""Plain and JSON renderings of maps built with the FSMap mutators (ref §13, O2–O6)."""

from __future__ import annotations

import os

import pytest

from common import states
from common.fs_status import format_bytes, format_dimless, fs_status_json, fs_status_plain
from common.fsmap import ALLOW_STANDBY_REPLAY, INFO_FROZEN, FSMap, MDSInfo, MDSMap
from common.health import fs_health_checks
from common.render import (
    addrvec_plain,
    compat_dict,
    compat_plain,
    format_stamp,
    fs_get_json,
    fs_get_plain,
    fs_ls_json,
    fs_ls_plain,
    fsmap_json,
    fsmap_plain,
    info_json,
    info_plain,
    mdsmap_json,
)
from common.summary import mds_stat_json, mds_stat_plain, status_json, status_plain

WALL = 1728368691.587651  # 2024-10-08T06:24:51.587651+0000
POOLS = {1: "cephfs_metadata", 2: "cephfs_data", 3: "b_meta", 4: "b_data"}
EXTRA = {"fsid": "f00", "mon_names": ["a"], "mon_age": "5m", "osd": "1 osds: 1 up, 1 in"}


def daemon(gid: int, name: str) -> MDSInfo:
    return MDSInfo(gid=gid, name=name, addr=f"127.0.0.1:{6800 + gid % 100}/{gid}", state_seq=5)


def build(n_standby: int = 1, replay: bool = False) -> tuple[FSMap, MDSMap]:
    """cephfs with mds.a active on rank 0, optionally mds.b following it, then standbys."""
    m = FSMap(epoch=1, btime=WALL)
    fs = m.create_filesystem("cephfs", 1, [2], WALL)
    names = ["a", "b", "c", "d"][: 1 + int(replay) + n_standby]
    for i, name in enumerate(names):
        m.epoch += 1
        m.insert(daemon(4123 + i, name))
    m.epoch += 1
    m.promote(4123, fs, 0, WALL + 10)
    fs.mds_info[4123].state = states.ACTIVE
    if replay:
        fs.set_flag(ALLOW_STANDBY_REPLAY)
        m.assign_standby_replay(4124, fs, 0)
    return m, fs


# -- small values


def test_format_stamp() -> None:
    assert format_stamp(WALL) == "2024-10-08T06:24:51.587651+0000"
    assert format_stamp(0) == "0.000000"
    assert format_stamp(1704067200.0000004) == "2024-01-01T00:00:00.000000+0000"


def test_addrvec_and_compat() -> None:
    assert addrvec_plain("127.0.0.1:6800/1234") == "[v2:127.0.0.1:6800/1234]"
    assert addrvec_plain("") == "[]"
    assert compat_plain().startswith(
        "compat={},rocompat={},incompat={1=base v0.20,2=client writeable ranges,"
    )
    assert compat_plain().endswith(",10=snaprealm v2,11=minor log segments,12=quiesce subvolumes}")
    d = compat_dict()
    assert list(d) == ["compat", "ro_compat", "incompat"]
    assert d["incompat"]["feature_1"] == "base v0.20"


def test_humanised_numbers() -> None:
    assert format_dimless(85200) == "85.2k"
    assert format_dimless(12.7) == "  12 "
    assert format_dimless(0) == "   0 "
    assert format_dimless(123456) == " 123k"
    assert format_bytes(2400 * 1024 * 1024) == "2400M"


# -- daemon lines


def test_info_plain_basic_and_standby() -> None:
    m, fs = build()
    assert info_plain(fs.mds_info[4123]) == (
        "[mds.a{0:4123} state up:active seq 5 addr [v2:127.0.0.1:6823/4123]"
        " compat {c=[1],r=[1],i=[1fff]}]"
    )
    assert info_plain(m.standby_daemons[4124]).startswith("[mds.b{-1:4124} state up:standby seq 5")


def test_info_plain_laggy_targets_frozen_join_fscid() -> None:
    _, fs = build()
    info = fs.mds_info[4123]
    info.laggy_since = WALL
    info.export_targets = [2, 1]
    info.flags |= INFO_FROZEN
    info.join_fscid = 1
    assert info_plain(info) == (
        "[mds.a{0:4123} state up:active seq 5 laggy since 2024-10-08T06:24:51.587651+0000"
        " export targets 1,2 frozen join_fscid=1 addr [v2:127.0.0.1:6823/4123]"
        " compat {c=[1],r=[1],i=[1fff]}]"
    )


def test_info_json_fields() -> None:
    _, fs = build()
    info = fs.mds_info[4123]
    keys = ["gid", "name", "rank", "incarnation", "state", "state_seq", "addr", "addrs"]
    keys += ["join_fscid", "export_targets", "features", "flags", "compat"]
    d = info_json(info)
    assert list(d) == keys
    assert d["state"] == "up:active"
    assert d["addrs"] == {"addrvec": [{"type": "v2", "addr": "127.0.0.1:6823", "nonce": 4123}]}
    info.laggy_since = WALL
    d = info_json(info)
    assert list(d).index("laggy_since") == keys.index("join_fscid") + 1
    assert d["laggy_since"] == "2024-10-08T06:24:51.587651+0000"


# -- fs get / fs dump


def test_fs_get_plain() -> None:
    _, fs = build(n_standby=0, replay=True)
    lines = fs_get_plain(fs).split("\n")
    assert lines[0] == "Filesystem 'cephfs' (1)"
    assert lines[1] == "fs_name\tcephfs"
    assert "flags\t32 joinable allow_snaps allow_multimds_snaps allow_standby_replay" in lines
    assert "created\t2024-10-08T06:24:51.587651+0000" in lines
    for line in ("in\t0", "up\t{0=4123}", "failed\t", "data_pools\t[2]", "metadata_pool\t1"):
        assert line in lines
    assert "standby_count_wanted\t0" in lines
    # the follower (inc 0) sorts after the active of its rank
    assert lines[-2].startswith("[mds.a{0:4123} state up:active")
    assert lines[-1].startswith("[mds.b{0:4124} state up:standby-replay")


def test_fs_get_default_flags_and_not_joinable() -> None:
    _, fs = build()
    assert "flags\t12 joinable allow_snaps allow_multimds_snaps" in fs_get_plain(fs)
    fs.set_flag(1)
    assert "flags\t13 allow_snaps allow_multimds_snaps" in fs_get_plain(fs)


def test_mdsmap_json_key_order() -> None:
    _, fs = build()
    d = mdsmap_json(fs)
    assert list(d) == [
        "epoch", "flags", "flags_state", "ever_allowed_features",
        "explicitly_allowed_features", "created", "modified", "tableserver", "root",
        "session_timeout", "session_autoclose", "required_client_features", "max_file_size",
        "max_xattr_size", "last_failure", "last_failure_osd_epoch", "compat", "max_mds", "in",
        "up", "failed", "damaged", "stopped", "info", "data_pools", "metadata_pool", "enabled",
        "fs_name", "balancer", "bal_rank_mask", "standby_count_wanted", "qdb_leader",
        "qdb_cluster",
    ]  # fmt: skip
    assert d["up"] == {"mds_0": 4123}
    assert list(d["info"]) == ["gid_4123"]
    assert d["flags_state"]["joinable"] is True
    assert d["standby_count_wanted"] == 0
    assert fs_get_json(fs) == {"mdsmap": d, "id": 1}


def test_squid_fs_get_compat_qdb_and_balance_automate() -> None:
    """Squid's MDSMap::print/dump: the fs compat lists features 1-12, the quiesce db leader
    and members follow standby_count_wanted, balance_automate is a flag; last_failure is 0."""
    m, fs = build()
    lines = fs_get_plain(fs).split("\n")
    compat = next(line for line in lines if line.startswith("compat\t"))
    assert compat.endswith(",7=mds uses inline data,8=no anchor table,9=file layout v2,"
                           "10=snaprealm v2,11=minor log segments,12=quiesce subvolumes}")
    assert lines[lines.index("standby_count_wanted\t0") + 1] == (
        "qdb_cluster\tleader: 4123 members: 4123")
    assert "last_failure\t0" in lines
    d = mdsmap_json(fs)
    assert (d["qdb_leader"], d["qdb_cluster"]) == (4123, [4123])
    assert d["compat"]["incompat"]["feature_11"] == "minor log segments"
    assert d["compat"]["incompat"]["feature_12"] == "quiesce subvolumes"
    assert list(d["flags_state"])[-1] == "balance_automate"
    assert d["flags_state"]["balance_automate"] is False
    fs.set_flag(1 << 8)
    assert mdsmap_json(fs)["flags_state"]["balance_automate"] is True
    assert "flags\t112 joinable allow_snaps allow_multimds_snaps balance_automate" in (
        fs_get_plain(fs))
    assert "feature_7" not in fsmap_json(m)["compat"]["incompat"]  # the FSMap default
    assert fsmap_json(m)["compat"]["incompat"]["feature_12"] == "quiesce subvolumes"
    m.epoch += 1
    m.erase(4123, 5)
    assert (fs.last_failure, fs.last_failure_osd_epoch) == (0, 5)
    assert (mdsmap_json(fs)["qdb_leader"], mdsmap_json(fs)["qdb_cluster"]) == (0, [])


SEED_000 = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "ref", "seeds",
                        "000_35b326e4566e1e07.txt")


def test_seed_000_fs_get_is_reproduced() -> None:
    """The `ceph fs get lxd_cephfs` output of seed 000 (a Squid cluster), key for key."""
    with open(SEED_000) as f:
        text = f.read()
    block = text.split("ceph fs get lxd_cephfs\n", 1)[1].split("\n[mds.", 1)[0]
    m = FSMap(epoch=18, btime=WALL)
    fs = m.create_filesystem("lxd_cephfs", 3, [4], 1752618433.562653)
    m.insert(daemon(44121, "micro11"))
    m.epoch = 19
    m.promote(44121, fs, 0, 1757115136.655454)
    fs.mds_info[44121].state = states.ACTIVE
    fs.standby_count_wanted, fs.last_failure_osd_epoch = 1, 330
    ours = fs_get_plain(fs).split("\n[mds.", 1)[0]
    assert [line.split() for line in ours.split("\n")] == [
        line.split() for line in block.split("\n")]


def test_fsmap_json_key_order_and_standbys() -> None:
    m, _ = build(n_standby=2)
    d = fsmap_json(m)
    assert list(d) == [
        "epoch", "default_fscid", "compat", "feature_flags", "standbys", "filesystems",
    ]  # fmt: skip
    assert d["default_fscid"] == 1
    assert [s["name"] for s in d["standbys"]] == ["b", "c"]
    assert d["standbys"][0]["epoch"] == m.standby_epochs[4124]
    assert d["filesystems"][0]["id"] == 1


def test_fsmap_plain_layout() -> None:
    m, _ = build()
    lines = fsmap_plain(m).split("\n")
    assert lines[:6] == [
        f"e{m.epoch}",
        "btime 2024-10-08T06:24:51.587651+0000",
        "enable_multiple, ever_enabled_multiple: 1,1",
        "default compat: compat={},rocompat={},incompat={1=base v0.20,2=client writeable "
        "ranges,3=default file layouts on dirs,4=dir inode in separate object,5=mds uses "
        "versioned encoding,6=dirfrag is stored in omap,8=no anchor table,9=file layout v2,"
        "10=snaprealm v2,11=minor log segments,12=quiesce subvolumes}",
        "legacy client fscid: 1",
        " ",
    ]
    assert lines[6] == "Filesystem 'cephfs' (1)"
    assert lines[-5:-1] == [" ", " ", "Standby daemons:", " "]
    assert lines[-1].startswith("[mds.b{-1:4124} state up:standby")


def test_fsmap_plain_without_filesystems() -> None:
    m = FSMap(epoch=1)
    lines = fsmap_plain(m).split("\n")
    assert lines[-1] == "No filesystems configured"
    assert "btime 0.000000" in lines


# -- fs ls


def test_fs_ls() -> None:
    m, _ = build()
    m.create_filesystem("b", 3, [4], WALL)
    assert fs_ls_plain(m, POOLS) == (
        "name: cephfs, metadata pool: cephfs_metadata, data pools: [cephfs_data ]\n"
        "name: b, metadata pool: b_meta, data pools: [b_data ]"
    )
    assert fs_ls_json(m, POOLS)[0] == {
        "name": "cephfs",
        "metadata_pool": "cephfs_metadata",
        "metadata_pool_id": 1,
        "data_pool_ids": [2],
        "data_pools": ["cephfs_data"],
    }
    assert fs_ls_plain(FSMap(), POOLS) == "No filesystems enabled"


# -- mds stat


def test_mds_stat_one_fs() -> None:
    m, fs = build()
    assert mds_stat_plain(m) == "cephfs:1 {0=a=up:active} 1 up:standby"
    m, fs = build(replay=True)
    assert mds_stat_plain(m) == "cephfs:1 {0=a=up:active} 1 up:standby-replay 1 up:standby"
    fs.mds_info[4123].laggy_since = WALL
    assert "{0=a=up:active(laggy or crashed)}" in mds_stat_plain(m)


def test_mds_stat_degraded_and_failed() -> None:
    m, _ = build(n_standby=1)
    m.erase(4123, 5)
    assert mds_stat_plain(m) == "cephfs:0/1 1 up:standby, 1 failed"
    fs = m.fs_by_name("cephfs")
    m.promote(4124, fs, 0, WALL)
    assert mds_stat_plain(m) == "cephfs:1/1 {0=b=up:replay}"


def test_mds_stat_two_filesystems() -> None:
    m, _ = build(n_standby=2)
    b = m.create_filesystem("b", 3, [4], WALL)
    m.promote(4125, b, 0, WALL)
    b.mds_info[4125].state = states.ACTIVE
    assert mds_stat_plain(m) == "cephfs:1 b:1 {b:0=c=up:active,cephfs:0=a=up:active} 1 up:standby"
    d = mds_stat_json(m)
    assert d["mdsmap_last_committed"] == m.epoch
    assert d["fsmap"] == fsmap_json(m)


# -- fs status


def test_fs_status_plain() -> None:
    m, fs = build(n_standby=1, replay=True)
    stats = {4123: {"clients": 12, "req_rate": 12, "dns": 85200, "inos": 84100, "caps": 45000}}
    out = fs_status_plain(m, None, POOLS, stats)
    lines = out.split("\n")
    assert lines[:2] == ["cephfs - 12 clients", "======"]
    assert lines[2].split() == ["RANK", "STATE", "MDS", "ACTIVITY", "DNS", "INOS", "DIRS", "CAPS"]
    assert lines[3].split() == ["0", "active", "a", "Reqs:", "12", "/s", "85.2k", "84.1k", "0", "45.0k"]  # fmt: skip
    assert lines[4].startswith("0-s   standby-replay   b   Evts:    0 /s")
    assert lines[5].split() == ["POOL", "TYPE", "USED", "AVAIL"]
    assert lines[6].split() == ["cephfs_metadata", "metadata", "0", "0"]
    assert lines[7].split() == ["cephfs_data", "data", "0", "0"]
    assert lines[8:] == ["", "STANDBY MDS", "     c", "MDS version: mdsemu 0.1.0"]
    assert all(line == line.rstrip() for line in lines)


def test_O5_fs_status_blank_line_before_standbys_and_empty_tables_print_nothing() -> None:
    m, _ = build(n_standby=0)
    lines = fs_status_plain(m, None, POOLS, {}).split("\n")
    # no standbys: no STANDBY MDS header, just the blank line and the table's own newline
    assert lines[-4][2:].split() == ["cephfs_data", "data", "0", "0"]
    assert lines[-3:] == ["", "", "MDS version: mdsemu 0.1.0"]
    assert "STANDBY MDS" not in lines
    empty = FSMap(epoch=1)
    empty.insert(daemon(4200, "z"))
    assert fs_status_plain(empty, None, POOLS, {}) == (
        "\nSTANDBY MDS\n     z\nMDS version: mdsemu 0.1.0")
    assert fs_status_plain(FSMap(epoch=1), None, POOLS, {}) == "\n\n"  # no daemons, no versions


def test_fs_status_failed_laggy_and_versions() -> None:
    m, fs = build(n_standby=0)
    fs.max_mds = 2
    m.epoch += 1
    m.insert(daemon(4200, "z"))
    m.promote(4200, fs, 1, WALL)
    fs.mds_info[4200].state = states.ACTIVE
    m.erase(4200, 5)
    fs.mds_info[4123].laggy_since = WALL
    out = fs_status_plain(m, ["cephfs"], POOLS, {4123: {"version": "mdsemu 0.2.0"}})
    lines = out.split("\n")
    assert lines[3].split()[:3] == ["0", "active(laggy)", "a"]
    assert "Reqs" not in lines[3]
    assert lines[4].split() == ["1", "failed"]
    assert lines[-1] == "MDS version: mdsemu 0.2.0"
    with pytest.raises(ValueError, match="Invalid filesystem: nope"):
        fs_status_plain(m, ["nope"], POOLS, {})


def test_fs_status_mixed_versions_table() -> None:
    m, _ = build(n_standby=1)
    out = fs_status_plain(m, None, POOLS, {4124: {"version": "0.2.0"}})
    assert out.split("\n")[-5:] == [
        "STANDBY MDS",
        "     b",
        "  VERSION     DAEMONS",
        "mdsemu 0.1.0     a",
        "mdsemu 0.2.0     b",
    ]


def test_fs_status_json() -> None:
    m, _ = build(n_standby=1, replay=True)
    d = fs_status_json(m, None, POOLS, {4123: {"clients": 3, "req_rate": 7.5}})
    assert list(d) == ["clients", "mds_version", "mdsmap", "pools"]
    assert d["clients"] == [{"clients": 3, "fs": "cephfs"}]
    assert d["mdsmap"][0] == {
        "caps": 0, "dirs": 0, "dns": 0, "inos": 0, "name": "a", "rank": 0, "rate": 7.5,
        "state": "active",
    }  # fmt: skip
    assert d["mdsmap"][1] == {
        "caps": 0, "dirs": 0, "dns": 0, "events": 0, "inos": 0, "name": "b", "rank": "0-s",
        "state": "standby-replay",
    }  # fmt: skip
    assert d["mdsmap"][2] == {"name": "c", "state": "standby"}
    assert d["mds_version"] == [{"daemon": ["a", "b", "c"], "version": "mdsemu 0.1.0"}]
    assert d["pools"][0] == {
        "avail": 0, "id": 1, "name": "cephfs_metadata", "type": "metadata", "used": 0,
    }  # fmt: skip


def test_O5_fs_status_json_versions_and_unknown_fs() -> None:
    m, _ = build(n_standby=1)
    d = fs_status_json(m, None, POOLS, {4124: {"version": "0.2.0"}})
    assert d["mds_version"] == [{"daemons": ["a"], "version": "mdsemu 0.1.0"},
                                {"daemons": ["b"], "version": "mdsemu 0.2.0"}]
    d = fs_status_json(m, ["nope"], POOLS, {})  # the mgr checks the name in plain output only
    assert (d["clients"], d["pools"], d["mdsmap"]) == ([], [], [{"name": "b", "state": "standby"}])


# -- ceph status


def test_status_plain_healthy() -> None:
    m, _ = build(n_standby=1, replay=True)
    assert status_plain(m, fs_health_checks(m), EXTRA) == (
        "  cluster:\n"
        "    id:     f00\n"
        "    health: HEALTH_OK\n"
        " \n"
        "  services:\n"
        "    mon: 1 daemons, quorum a (age 5m)\n"
        "    mds: 1/1 daemons up, 1 standby, 1 hot standby\n"
        "    osd: 1 osds: 1 up, 1 in\n"
        " \n"
        "  data:\n"
        "    volumes: 1/1 healthy"
    )


def test_status_plain_failed_fs() -> None:
    m, fs = build(n_standby=0)
    fs.standby_count_wanted = 1
    m.erase(4123, 5)
    out = status_plain(m, fs_health_checks(m), EXTRA)
    assert (  # in code order, as Ceph's std::map of checks, not worst first
        "    health: HEALTH_ERR\n"
        "            1 filesystem is degraded\n"
        "            1 filesystem has a failed mds daemon\n"
        "            1 filesystem is offline\n"
        "            insufficient standby MDS daemons available\n"
    ) in out
    assert "    mds: 0/1 daemons up (1 failed)\n" in out
    assert out.endswith("    volumes: 0/1 healthy, 1 failed")


def test_status_json_checks_in_code_order() -> None:
    m, fs = build(n_standby=0)
    fs.standby_count_wanted = 1
    m.erase(4123, 5)
    checks = status_json(m, fs_health_checks(m), EXTRA)["health"]["checks"]
    assert list(checks) == [
        "FS_DEGRADED", "FS_WITH_FAILED_MDS", "MDS_ALL_DOWN", "MDS_INSUFFICIENT_STANDBY"]
    assert "detail" not in checks["MDS_ALL_DOWN"]


def test_status_json() -> None:
    m, _ = build(n_standby=1)
    d = status_json(m, fs_health_checks(m), EXTRA)
    assert d["fsid"] == "f00"
    assert d["health"] == {"status": "HEALTH_OK", "checks": {}, "mutes": []}
    assert d["quorum_names"] == ["a"]
    assert d["fsmap"] == {
        "epoch": m.epoch,
        "id": 1,
        "up": 1,
        "in": 1,
        "max": 1,
        "by_rank": [
            {"filesystem_id": 1, "rank": 0, "name": "a", "status": "up:active", "gid": 4123}
        ],
        "up:standby": 1,
    }

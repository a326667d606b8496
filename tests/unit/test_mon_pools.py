"""`osd pool create|ls|rm` against the monitor core, with Ceph's messages and errno
(OSDMonitor::prepare_command_impl "osd pool create"/"osd pool delete", _check_remove_pool)."""

from __future__ import annotations

import errno
import json

from common.config import Config
from mon import commands
from mon.mds_monitor import MDSMonitor

YES = "--yes-i-really-really-mean-it"


def cmd(m: MDSMonitor, args: list[str], fmt: str = "plain"):
    return commands.run(m, args, fmt).reply


def mon(**options) -> MDSMonitor:
    return MDSMonitor(Config("mon.a", overrides={k: str(v) for k, v in options.items()}))


def test_pool_create_ls_and_create_again():
    m = mon()
    epoch = m.osdmap.epoch
    assert cmd(m, ["osd", "pool", "create", "nfs-ganesha"]) == \
        (0, "pool 'nfs-ganesha' created", "")
    assert m.osdmap.epoch == epoch + 1
    assert cmd(m, ["osd", "pool", "create", "nfs-ganesha", "32"]) == \
        (0, "pool 'nfs-ganesha' already exists", "")
    assert m.osdmap.epoch == epoch + 1  # nothing to commit
    assert cmd(m, ["fs", "new", "a", "cephfs.a.meta", "cephfs.a.data"])[0] == 0
    assert cmd(m, ["osd", "pool", "ls"])[2] == "nfs-ganesha\ncephfs.a.meta\ncephfs.a.data"
    assert cmd(m, ["osd", "pool", "ls"], "json")[2] == \
        '["nfs-ganesha","cephfs.a.meta","cephfs.a.data"]'
    detail = cmd(m, ["osd", "pool", "ls", "detail"])[2].splitlines()
    assert detail[0] == "pool 1 'nfs-ganesha' replicated size 1 min_size 1"
    assert detail[1] == "pool 2 'cephfs.a.meta' replicated size 1 min_size 1 application cephfs"
    d = json.loads(cmd(m, ["osd", "pool", "ls", "detail"], "json")[2])
    assert d[0]["pool_name"] == "nfs-ganesha" and d[0]["application_metadata"] == {}
    assert cmd(m, ["osd", "pool", "create", "x", "zero"])[0] == -errno.EINVAL
    assert cmd(m, ["osd", "pool", "create"])[0] == -errno.EINVAL


def test_pool_rm_needs_the_name_twice_and_the_flag():
    m = mon(mon_allow_pool_delete="true")
    cmd(m, ["osd", "pool", "create", "p"])
    warning = ("WARNING: this will *PERMANENTLY DESTROY* all data stored in pool p.  If you are "
               "*ABSOLUTELY CERTAIN* that is what you want, pass the pool name *twice*, "
               "followed by --yes-i-really-really-mean-it.")
    for args in (["p"], ["p", YES], ["p", "p"], ["p", "q", YES]):
        assert cmd(m, ["osd", "pool", "rm", *args]) == (-errno.EPERM, warning, "")
    assert cmd(m, ["osd", "pool", "rm", "p", "p", YES]) == (0, "pool 'p' removed", "")
    assert m.osdmap.pool_by_name("p") is None
    assert cmd(m, ["osd", "pool", "rm", "p", "p", YES]) == \
        (0, "pool 'p' does not exist", "")
    assert cmd(m, ["osd", "pool", "delete", "nope"]) == \
        (0, "pool 'nope' does not exist", "")


def test_pool_rm_refused_while_cephfs_uses_it_or_deletion_is_disabled():
    m = mon(mon_allow_pool_delete="true")
    cmd(m, ["fs", "new", "a", "meta", "data"])
    assert cmd(m, ["osd", "pool", "rm", "meta", "meta", YES]) == \
        (-errno.EBUSY, "pool 'meta' is in use by CephFS", "")
    m2 = mon()  # mon_allow_pool_delete defaults to false, as in Ceph
    cmd(m2, ["osd", "pool", "create", "p"])
    assert cmd(m2, ["osd", "pool", "rm", "p", "p", YES]) == (
        -errno.EPERM, "pool deletion is disabled; you must first set the mon_allow_pool_delete "
        "config option to true before you can destroy a pool", "")
    assert m2.osdmap.pool_by_name("p") is not None

"""The monitor core's proposal API: every entry point returns its Effects (the reply and what
the shell must persist and publish), and a proposal is opened, committed or aborted in one
place (`MDSMonitor.propose`). Plus the monitor's shape: sans-IO cores, no mixins."""

from __future__ import annotations

import ast
import errno
from pathlib import Path

import pytest

from common import states, summary
from common.messages import Beacon, BeaconAck
from mon import commands
from mon.mds_monitor import MDSMonitor
from tests.unit.monsim import Cluster, healthy

MON = Path(__file__).resolve().parents[2] / "mon"
SHELLS = {"server.py", "store.py", "__main__.py"}  # the trio shell and its store


def test_T0_a_command_returns_every_commit_of_its_chain_in_epoch_order() -> None:
    c = healthy("a", "b")
    epoch, holder, spare = c.mon.fsmap.epoch, c.holder(), c.standbys()[0]
    effects = commands.run(c.mon, ["mds", "fail", holder], "plain", "client.admin", c.t, c.wall)
    gid = c.daemons[holder].gid
    assert effects.reply == (0, f"failed mds gid {gid}", "")
    # the fail, then the tick T0 runs at once: the standby takes the rank
    assert [m.epoch for m in effects.fsmaps] == [epoch + 1, epoch + 2]
    assert effects.fsmap is c.mon.fsmap and effects.fsmap.filesystems[1].holder(0).name == spare
    assert effects.osdmap is c.mon.osdmap and effects.osdmap.blocklist  # F1: fenced
    messages = [m for _, _, m in effects.clog]
    assert messages[0] == f"daemon mds.{holder} marked failed by client.admin"
    assert f"Standby daemon mds.{spare} assigned to filesystem cephfs as rank 0" in messages


def test_M6_a_boot_beacon_returns_its_ack_with_the_map_that_has_the_daemon() -> None:
    c = Cluster()
    gid = c.mon.allocate_gid()
    effects = c.mon.handle_beacon(
        Beacon(global_id=gid, name="a", state=states.BOOT, seq=1, version=0,
               addr="10.0.0.1:6800/1"), c.t, c.wall)
    assert isinstance(effects.reply, BeaconAck) and effects.reply.version == 2
    assert [m.epoch for m in effects.fsmaps] == [2]
    assert effects.fsmap.standby_daemons[gid].name == "a" and effects.osdmap is None


def test_a_refused_command_returns_its_error_and_nothing_to_persist() -> None:
    c = healthy("a", "b")
    epoch = c.mon.fsmap.epoch
    effects = commands.run(c.mon, ["fs", "set", "cephfs", "max_mds", "0"])
    assert effects.reply == (-errno.EINVAL, "You must specify at least one MDS", "")
    assert not effects.changed and c.mon.fsmap.epoch == epoch


def test_a_read_only_command_changes_nothing() -> None:
    c = healthy("a", "b")
    effects = commands.run(c.mon, ["fs", "dump"], "json", now=c.t, wall=c.wall)
    assert effects.reply[0] == 0 and not effects.changed


def test_the_pending_map_exists_only_inside_a_proposal() -> None:
    c = healthy("a")
    with pytest.raises(RuntimeError, match="no proposal open"):
        c.mon.pfs  # noqa: B018
    with pytest.raises(RuntimeError, match="no proposal open"):
        c.mon.clog(c.wall, "INF", "lost")
    with c.mon.propose(c.t, c.wall), pytest.raises(RuntimeError, match="already open"):
        with c.mon.propose(c.t, c.wall):
            pass


def test_propose_commits_the_block_and_aborts_it_on_error() -> None:
    c = healthy("a")
    epoch = c.mon.fsmap.epoch
    with pytest.raises(ZeroDivisionError), c.mon.propose(c.t, c.wall):
        c.mon.pfs.modify_filesystem(1, c.wall).max_mds = 3
        c.mon.clog(c.wall, "INF", "half done")
        1 / 0  # noqa: B018
    assert c.mon.fsmap.epoch == epoch and c.mon.view is c.mon.fsmap
    with c.mon.propose(c.t, c.wall) as effects:
        c.mon.pfs.modify_filesystem(1, c.wall).standby_count_wanted = 0
    assert effects.reply is None and [m.epoch for m in effects.fsmaps] == [epoch + 1]
    assert c.mon.fsmap.filesystems[1].standby_count_wanted == 0
    assert c.mon.fsmap.filesystems[1].epoch == epoch + 1


def test_osd_boot_returns_the_osdmap_and_its_log_line() -> None:
    c = Cluster()
    effects = c.mon.osd_boot(0, "10.0.0.9:6801", c.t, c.wall)
    assert effects.osdmap is c.mon.osdmap and effects.osdmap.osd_addrs == {0: "10.0.0.9:6801"}
    assert [(lvl, m) for _, lvl, m in effects.clog] == [("INF", "osd.0 10.0.0.9:6801 boot")]
    assert not effects.fsmaps
    assert not c.mon.osd_boot(0, "10.0.0.9:6801", c.t, c.wall).changed  # nothing new


def test_config_changes_are_effects_and_apply_at_once() -> None:
    c = Cluster()
    effects = commands.run(c.mon, ["config", "set", "mon", "mds_beacon_grace", "20"])
    assert effects.reply == (0, "", "") and effects.config and not effects.fsmaps
    assert c.mon.opt("mds_beacon_grace") == 20
    assert not commands.run(c.mon, ["config", "rm", "mon", "mds_log_max_segments"]).config
    assert commands.run(c.mon, ["config", "rm", "mon", "mds_beacon_grace"]).config
    assert c.mon.opt("mds_beacon_grace") == 15


# -- the monitor's shape
def _modules():
    for path in sorted(MON.glob("*.py")):
        yield path.name, ast.parse(path.read_text())


def test_no_module_reaches_into_another_objects_private_names() -> None:
    """Only `self` (or `cls`) is followed by a private name: the commands, the shell and the
    choices of the tick go through the core's public API (propose, pfs, view, clog, ...)."""
    found = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                found.append(f"{name}:{node.lineno} .{node.attr}")
    assert not found


def test_no_mixins_in_the_monitor() -> None:
    """Composition: no class in mon/ derives from another class of mon/."""
    ours = {n.name for _, tree in _modules() for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    derived = [f"{name}: {n.name}({ast.unparse(b)})" for name, tree in _modules()
               for n in ast.walk(tree) if isinstance(n, ast.ClassDef)
               for b in n.bases if ast.unparse(b).split(".")[-1] in ours]
    assert not derived and MDSMonitor.__bases__ == (object,)


def test_the_monitor_cores_import_no_trio_and_read_no_clock() -> None:
    found = []
    for name, tree in _modules():
        if name in SHELLS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""]
                found += [f"{name}: import {m}" for m in mods
                          if m.split(".")[0] in ("trio", "time", "socket", "asyncio")]
    assert not found


def test_monitor_modules_stay_under_500_lines() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in MON.glob("*.py")}
    assert {n: s for n, s in sizes.items() if s > 500} == {}


def test_each_committed_fsmap_is_logged_at_DBG_after_the_calls_other_lines() -> None:
    c = healthy("a", "b")
    holder = c.holder()
    effects = commands.run(c.mon, ["mds", "fail", holder], "plain", "client.admin", c.t, c.wall)
    debug = [m for _, lvl, m in effects.clog if lvl == "DBG"]
    assert debug == [f"fsmap {summary.mds_stat_plain(m)}" for m in effects.fsmaps]
    assert all(lvl == "DBG" for _, lvl, _ in effects.clog[-len(debug):])


def test_a_reconnecting_mds_keeps_its_gid_and_anyone_else_gets_a_new_one() -> None:
    mon = MDSMonitor(Cluster().config, next_gid=4100)
    assert mon.session_gid("mds.a", 5000) == 5000 and mon.next_gid == 5001
    assert mon.session_gid("client.admin", 4200) == 5001
    assert mon.session_gid("mds.b", 0) == 5002 and mon.next_gid == 5003


def test_global_ids_are_reserved_in_blocks_so_a_session_costs_no_store_write() -> None:
    mon = MDSMonitor(Cluster(mon_globalid_prealloc=100).config, next_gid=4100)
    assert mon.gid_reserved == 4100  # what the store holds
    assert mon.session_gid("client.admin", 0) == 4100 and mon.gid_reserved == 4201
    for _ in range(100):
        mon.session_gid("client.admin", 0)
    assert mon.next_gid == 4201 and mon.gid_reserved == 4201  # one write for 101 sessions
    assert mon.session_gid("mds.a", 0) == 4201 and mon.gid_reserved == 4302
    assert mon.session_gid("mds.b", 9000) == 9000 and mon.gid_reserved == 9101
    # a monitor restarted from the store hands out only gids above every one given
    again = MDSMonitor(mon.config, next_gid=mon.gid_reserved)
    assert again.session_gid("client.admin", 0) == 9101

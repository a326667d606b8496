"""cephx in compose.yaml (issue 15): the key files the monitor's container makes
(client/compose_auth.py) and what the entry point writes and waits for (docker/entrypoint.py),
without Docker (the compose cluster itself is tests/container/test_compose.py)."""

from __future__ import annotations

import importlib.util
import itertools
import os
import stat

import pytest

from client import compose_auth
from client.fscli import parse_args
from common import config as cfg
from common import keyring
from common.keyring import Entry
from mon.auth_monitor import AuthMonitor
from mon.store import MonStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def counter_keys():
    n = itertools.count()
    return lambda: f"key{next(n)}"


def test_every_compose_entity_gets_its_own_caps():
    wanted = compose_auth.entities()
    assert set(wanted) == {"mon.", "client.admin", "osd.0", "mds.a", "mds.b", "mds.c",
                           "client.nfs.a", "client.nfs.b", "client.load"}
    assert wanted["client.admin"] == {"mon": "allow *", "osd": "allow *", "mds": "allow *"}
    assert wanted["mds.b"]["mon"] == "profile mds" and wanted["osd.0"]["mon"] == "profile osd"
    # the heads reach only their grace database (as vstart --nfs gives them)
    assert wanted["client.nfs.a"] == {"mon": "allow r", "mds": "allow rw",
                                      "osd": "allow rw pool=cephfs_metadata namespace=ganesha"}
    assert compose_auth.entities(fs="x")["client.load"] == {
        "mon": "allow r", "mds": "allow rw", "osd": "allow rw pool=x_data"}


def test_reconcile_makes_only_missing_keys_and_the_monitors_database_decides():
    wanted = {"client.admin": {"mon": "allow *"}, "mds.a": {"mds": "allow"},
              "osd.0": {"osd": "allow *"}}
    first = compose_auth.reconcile(wanted, {}, None, counter_keys())
    assert first == {"client.admin": Entry("key0", {"mon": "allow *"}),
                     "mds.a": Entry("key1", {"mds": "allow"}),
                     "osd.0": Entry("key2", {"osd": "allow *"})}
    # a restart: the files are kept as they are
    assert compose_auth.reconcile(wanted, first, None, counter_keys()) == first
    # the monitor's database holds other keys (files lost, or `auth caps`): it wins, and an
    # entity it lacks keeps its file
    db = {"client.admin": Entry("dbkey", {"mon": "allow *"}),
          "mds.a": Entry("dbkey2", {"mds": "allow rw"})}
    again = compose_auth.reconcile(wanted, {"osd.0": first["osd.0"]}, db, counter_keys())
    assert again == {**db, "osd.0": first["osd.0"]}
    assert compose_auth.missing_from(set(db), again) == ["osd.0"]


def test_bootstrap_writes_a_file_per_entity_then_follows_the_monitor(tmp_path):
    keys, mon_data = tmp_path / "keys", tmp_path / "mon" / "ceph-a"
    mon_keyring = mon_data / "keyring"
    wanted = compose_auth.entities()
    written = compose_auth.bootstrap(str(mon_data), str(mon_keyring), wanted, str(keys))
    assert sorted(written) == sorted(wanted)
    files = {e: keyring.load(compose_auth.key_path(e, str(keys))) for e in wanted}
    for entity, entries in files.items():
        assert list(entries) == [entity]  # each file holds its entity only
        mode = os.stat(compose_auth.key_path(entity, str(keys))).st_mode
        assert stat.S_IMODE(mode) == 0o600
    mkfs = keyring.load(str(mon_keyring))
    assert mkfs == {e: f[e] for e, f in files.items()}  # the monitor imports them all
    # a second start changes nothing
    assert compose_auth.bootstrap(str(mon_data), str(mon_keyring), wanted, str(keys)) == []
    # the monitor's database, as the monitor stores it, after `auth caps` of mds.a; and the
    # file of osd.0 lost: both come back from the database
    auth = AuthMonitor()
    auth.import_entries(mkfs)
    auth.entities["mds.a"] = Entry(mkfs["mds.a"].key, {"mds": "allow r"})
    store = MonStore(str(mon_data))
    store.commit(kv=auth.to_kv())
    store.close()
    os.unlink(compose_auth.key_path("osd.0", str(keys)))
    written = compose_auth.bootstrap(str(mon_data), str(mon_keyring), wanted, str(keys))
    assert sorted(written) == ["mds.a", "osd.0"]
    assert keyring.load(compose_auth.key_path("osd.0", str(keys))) == {"osd.0": mkfs["osd.0"]}
    assert keyring.load(compose_auth.key_path("mds.a", str(keys)))["mds.a"].caps == {
        "mds": "allow r"}


def entrypoint():
    spec = importlib.util.spec_from_file_location("mdsemu_entrypoint",
                                                  os.path.join(ROOT, "docker", "entrypoint.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_entrypoint_conf_is_cephx_by_default_and_none_on_request(tmp_path, monkeypatch):
    ep = entrypoint()
    for var in ("MDSEMU_AUTH", "MDSEMU_OPTIONS", "MDSEMU_MON_HOST"):
        monkeypatch.delenv(var, raising=False)
    conf = tmp_path / "ceph.conf"
    conf.write_text(ep.conf_text())
    parsed = cfg.load_conf(str(conf))
    mds = cfg.Config("mds.b", parsed)
    assert mds.get("auth_cluster_required") == "cephx"
    assert mds.get("keyring") == "/etc/ceph/keys/ceph.mds.b.keyring"
    assert cfg.Config("client.load", parsed).get("keyring") == \
        "/etc/ceph/keys/ceph.client.load.keyring"
    assert cfg.Config("mon.a", parsed).get("keyring") == "/var/lib/mdsemu/mon/ceph-a/keyring"
    monkeypatch.setenv("MDSEMU_AUTH", "none")
    conf.write_text(ep.conf_text())
    none = cfg.Config("mds.b", cfg.load_conf(str(conf)))
    assert none.get("auth_cluster_required") == "none" and none.get("keyring") == ""
    monkeypatch.setenv("MDSEMU_AUTH", "kerberos")
    with pytest.raises(SystemExit, match="MDSEMU_AUTH: expected cephx or none"):
        ep.conf_text()


def test_entrypoint_knows_whose_key_a_service_waits_for():
    ep = entrypoint()
    assert [ep.entity_of(a) for a in (
        ["mdsemu-osd", "-c", "c", "--public_addr", "x", "-i", "0"],
        ["mdsemu-mds", "-c", "c", "-i", "b"], ["mdsemu-nfs", "-f", "g", "-i", "a"],
        ["mdsemu-setup"], ["mdsemu-clog"], ["mdsemu-mon", "-i", "a"], ["mdsemu", "health"])] \
        == ["osd.0", "mds.b", "client.nfs.a", "client.admin", "client.admin", None, None]


def test_the_client_tools_take_an_identity_beside_setfattrs_own_name():
    a = parse_args(["--id", "load", "load", "--history", "h", "-k", "/k"])
    assert (a.op, a.entity, a.keyring) == ("load", "client.load", "/k")
    a = parse_args(["setfattr", "-n", "user.x", "/f"])
    assert (a.name, a.entity, a.keyring) == ("user.x", "client.admin", None)  # setfattr's -n

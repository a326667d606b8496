"""A head's rados_cluster recovery databases, sans-IO (nfs/recovery.py): Ganesha's object
names and record layout, who may reclaim, when a survivor enforces, which databases may go."""

from __future__ import annotations

from nfs import recovery
from nfs.grace import GraceDB


def test_names_and_records_are_ganeshas():
    assert recovery.db_name(2, "a") == "rec-0000000000000002:a"
    assert recovery.parse_db_name("rec-000000000000000a:ganesha-1") == (10, "ganesha-1")
    assert recovery.parse_db_name("grace") is None
    key, value = recovery.record(4294967297, "192.168.1.5", "Linux NFSv4.1 client1")
    assert (key, value) == ("4294967297", b"192.168.1.5-(21:Linux NFSv4.1 client1)")
    assert recovery.parse_record(value) == ("192.168.1.5", "Linux NFSv4.1 client1")
    _, odd = recovery.record(1, "::1", b"a/b\x00")  # not printable or with '/': hex
    assert odd == b"::1-(10:0x612f6200)"
    assert recovery.parse_record(b"garbage") is None
    assert recovery.parse_record(b"1.2.3.4-(9:short)") is None  # length does not match


def test_reclaimable_owners_come_from_the_old_database():
    omap = dict([recovery.record(1, "10.0.0.1", "c1"), recovery.record(2, "10.0.0.2", "c2")])
    omap["junk"] = b"not a record"
    assert recovery.reclaimable(omap) == {"c1", "c2"}


def test_survivor_enforces_when_another_head_starts_a_grace_period():
    assert recovery.survivor_must_enforce(GraceDB(3, 2), in_grace=False)
    assert not recovery.survivor_must_enforce(GraceDB(3, 2), in_grace=True)
    assert not recovery.survivor_must_enforce(GraceDB(3, 0), in_grace=False)


def test_which_recovery_databases_may_be_deleted():
    names = [recovery.db_name(e, "a") for e in (1, 2, 3)] + [recovery.db_name(1, "b"), "grace"]
    # in a grace period (R=2, C=3): those before R
    assert recovery.deletable(names, "a", GraceDB(3, 2)) == ["rec-0000000000000001:a"]
    # none in force: all but the current one
    assert recovery.deletable(names, "a", GraceDB(3, 0)) == [
        "rec-0000000000000001:a", "rec-0000000000000002:a"]

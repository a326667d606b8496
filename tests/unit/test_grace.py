"""The rados_cluster grace database, sans-IO (nfs/grace.py), against NFS-Ganesha's
src/support/rados_grace.c: every command's effect on C, R and the N/E flags, its no-ops and
its errors, and the `dump` layout of ganesha-rados-grace."""

from __future__ import annotations

import errno

import pytest

from nfs import grace
from nfs.grace import ENFORCING as E
from nfs.grace import NEED_GRACE as N
from nfs.grace import Change, GraceDB, GraceError


def db(cur: int = 1, rec: int = 0, **flags: int) -> GraceDB:
    return GraceDB(cur, rec, dict(sorted(flags.items())))


def apply(d: GraceDB, change: Change | None) -> GraceDB:
    """What the object holds after the write (or unchanged when there is none)."""
    if change is None:
        return d
    flags = {**d.flags, **change.set}
    for k in change.rm:
        flags.pop(k)
    return GraceDB(change.cur, change.rec, dict(sorted(flags.items())))


def code_of(fn, *args) -> int:
    with pytest.raises(GraceError) as e:
        fn(*args)
    return e.value.code


def test_create_and_decode_the_object_layout():
    ops = grace.create_ops()
    assert ops == [["create", True], ["write_full", b"\x01" + b"\0" * 15]]
    d = grace.decode(b"\x03" + b"\0" * 7 + b"\x02" + b"\0" * 7, {"b": b"\x02", "a": b"\x03"})
    assert d == GraceDB(3, 2, {"a": N | E, "b": E})
    assert grace.decode(b"\x01" + b"\0" * 15 + b"extra", {}).cur == 1  # 16 bytes are read
    assert code_of(grace.decode, b"\0" * 15, {}) == errno.ENOTRECOVERABLE
    many = {f"n{i}": b"\x02" for i in range(grace.MAX_ITEMS + 1)}
    assert code_of(grace.decode, b"\0" * 16, many) == errno.ENOTRECOVERABLE
    assert grace.decode(None, {"a": b""}).flags == {"a": 0}  # add reads only the omap


def test_seed_add_a_add_b_dump():
    """Seed 004: `add a`, `add b`, then the dump shows cur=1 rec=0 and both flagged E."""
    d = db()
    d = apply(d, grace.add(d, ["a"]))
    d = apply(d, grace.add(d, ["b"]))
    assert grace.dump(d) == f"cur=1 rec=0\n{'=' * 54}\na\t E\nb\t E\n"


def test_add_of_an_existing_member_changes_nothing():
    d = db(a=N | E)
    assert grace.add(d, ["a"]) is None
    assert grace.add(d, ["b", "a"]) is None  # none of the listed nodes is added
    c = grace.add(d, ["b", "c"])
    assert c.set == {"b": E, "c": E} and not c.epochs and c.ops() == [
        ["omap_set", {"b": b"\x02", "c": b"\x02"}]]


def test_start_begins_a_grace_period_and_join_joins_one():
    d = db(1, 0, a=E, b=E)
    assert grace.join(d, ["a"], start=False) is None  # join with R=0: a silent no-op
    c = grace.join(d, ["a"], start=True)
    d = apply(d, c)
    assert (d.cur, d.rec, d.flags) == (2, 1, {"a": N | E, "b": E})
    assert c.ops() == [["write_full", grace.encode_epochs(2, 1)], ["omap_set", {"a": b"\x03"}]]
    c = grace.join(d, ["b"], start=False)  # in a grace period: join = start, epochs kept
    assert not c.epochs and apply(d, c) == db(2, 1, a=N | E, b=N | E)
    assert apply(d, grace.join(d, ["b"], start=True)) == db(2, 1, a=N | E, b=N | E)
    assert code_of(grace.join, d, ["zz"], True) == errno.ENOKEY
    assert code_of(grace.join, d, ["a", "a"], True) == errno.ENOKEY  # Ganesha's matching


def test_lift_only_when_everyone_enforces():
    d = db(3, 2, a=N | E, b=0)  # b has not started enforcing yet
    assert grace.lift(d, ["a"]) is None  # blocked: nothing written, no error
    assert grace.lift(d, ["nobody"]) is None  # the block comes before the membership check
    d = db(3, 2, a=N | E, b=E)
    c = grace.lift(d, ["a"])  # a's N was the last one: the grace period is over
    assert apply(d, c) == db(3, 0, a=E, b=E) and c.epochs
    d = db(3, 2, a=N | E, b=N | E)
    c = grace.lift(d, ["a"])  # b still needs grace: R stays
    assert apply(d, c) == db(3, 2, a=E, b=N | E) and not c.epochs
    assert grace.lift(apply(d, c), ["a"]) is None  # a has no N any more: a no-op
    assert apply(d, grace.lift(d, ["a", "b"])) == db(3, 0, a=E, b=E)
    assert code_of(grace.lift, d, ["a", "zz"]) == errno.ENOKEY


def test_lift_outside_a_grace_period_and_remove():
    d = db(2, 0, a=E, b=0)  # R=0: the enforcing guard does not apply
    assert grace.lift(d, ["a"]) is None
    c = grace.lift(d, ["b"], remove=True)
    assert c.rm == ("b",) and not c.set and c.ops()[-1] == ["omap_rm", ["b"]]
    # remove of a dead member lifts a stuck grace period (its N was the last one)
    d = db(5, 4, a=E, dead=N | E)
    c = grace.lift(d, ["dead"], remove=True)
    assert apply(d, c) == db(5, 0, a=E) and c.epochs
    # Ganesha compares counts, not names: removing a non-N node while one other has N
    d = db(5, 4, a=E, b=N | E)
    assert apply(d, grace.lift(d, ["a"], remove=True)) == db(5, 0, b=N | E)
    # but not while someone does not enforce
    assert grace.lift(db(5, 4, a=0, dead=N | E), ["dead"], remove=True) is None
    assert code_of(grace.lift, db(5, 0, a=E), ["b"], True) == errno.ENOKEY


def test_enforce_and_noenforce_keep_n_and_always_write():
    d = db(2, 1, a=N | E, b=0)
    assert apply(d, grace.enforce(d, ["b"], True)) == db(2, 1, a=N | E, b=E)
    assert apply(d, grace.enforce(d, ["a"], False)) == db(2, 1, a=N, b=0)
    c = grace.enforce(d, ["a"], True)  # nothing changes, yet Ganesha writes and notifies
    assert c is not None and c.set == {"a": N | E}
    assert code_of(grace.enforce, d, ["c"], True) == errno.ENOKEY


def test_member_and_enforcing_check():
    grace.member({"a": b"\x02"}, ["a"])
    assert code_of(grace.member, {"a": b"\x02"}, ["a", "c"]) == errno.ENOENT
    assert code_of(grace.member, {"a": b"\x02"}, ["a", "a"]) == errno.ENOENT
    assert grace.enforcing_check(db(a=E, b=E), "a") == 0
    assert grace.enforcing_check(db(a=E, b=0), "a") == -errno.EL2NSYNC
    assert grace.enforcing_check(db(a=E), "z") == -errno.ENOKEY


def test_dump_layout():
    assert grace.dump(db(3, 0, b=0, a=N | E)) == \
        "cur=3 rec=0\n======================================================\na\tNE\nb\t  \n"
    assert grace.dump(db(7, 6)) == f"cur=7 rec=6\n{grace.SEPARATOR}\n"


def test_the_seed_settles_at_cur_3_rec_0():
    """Seed 004: the heads start one after the other; each starts a grace period of its own
    (start: N and E, R=C, C=C+1), lifts its N when its clients reclaimed (R=0) and stops
    enforcing: `cur=3 rec=0` with no flags. Started together, the second joins the first's
    grace period instead and C ends at 2."""
    d = db(1, 0, a=E, b=E)
    for head, other in (("a", "b"), ("b", "a")):
        d = apply(d, grace.join(d, [head], True))
        assert grace.lift(d, [head]) is None or d.flags[other] & E
        d = apply(d, grace.enforce(d, [other], True))  # the running head sees R != 0
        d = apply(d, grace.lift(d, [head]))
        d = apply(d, grace.enforce(d, [head, other], False))
    assert grace.dump(d) == f"cur=3 rec=0\n{grace.SEPARATOR}\na\t  \nb\t  \n"
    d = db(1, 0, a=E, b=E)
    d = apply(d, grace.join(d, ["a"], True))
    d = apply(d, grace.join(d, ["b"], True))
    d = apply(d, grace.lift(d, ["a"]))
    assert d.rec == 1  # b still needs its grace period
    d = apply(d, grace.lift(d, ["b"]))
    assert (d.cur, d.rec) == (2, 0)


def test_summary_for_the_live_view_says_who_needs_and_who_enforces():
    db = grace.GraceDB(4, 3, {"a": grace.NEED_GRACE | grace.ENFORCING, "b": grace.ENFORCING})
    assert grace.summary(db) == ("grace period in force (epoch 4, recovering 3): needed by a; "
                                 "enforced by a b")
    assert grace.summary(grace.GraceDB(4, 0, {"a": 0, "b": 0})) == "no grace period (epoch 4)"

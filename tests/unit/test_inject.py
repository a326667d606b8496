"""Ceph's messenger fault injection decisions (common/inject.py), with plain numbers: the
options' meaning as in Ceph's AsyncConnection/ProtocolV2, and, unlike Ceph, replayable."""

from __future__ import annotations

import pytest

from common import config as cfg
from common.inject import Injector, Messenger, delay_types, peer_type


def decisions(inj: Injector, n: int = 200) -> list:
    out = []
    for i in range(n):
        out.append(inj.socket_failure(7, sending=i % 2 == 0))
        out.append(inj.deliver_at(float(i), "mds osd", 0.3, 2.0))
    return out


def test_same_seed_and_names_replay_the_same_choices():
    a = decisions(Injector(42, "mds.a", "osd.0", 0))
    b = decisions(Injector(42, "mds.a", "osd.0", 0))
    assert a == b
    assert a != decisions(Injector(43, "mds.a", "osd.0", 0))  # another seed
    assert a != decisions(Injector(42, "mds.a", "osd.0", 1))  # the next connection
    assert a != decisions(Injector(42, "mds.b", "osd.0", 0))  # another daemon


def test_directions_have_their_own_generators():
    """What a send decides does not shift what the reads decide (tasks interleave freely)."""
    x, y = Injector(1, "mds.a", "mon.a", 0), Injector(1, "mds.a", "mon.a", 0)
    for _ in range(50):
        y.socket_failure(3, sending=True)
    assert [x.socket_failure(3, sending=False) for _ in range(100)] == \
        [y.socket_failure(3, sending=False) for _ in range(100)]


def test_socket_failures_one_in_n():
    inj = Injector(0, "mds.a", "mon.a", 0)
    assert not any(inj.socket_failure(0, sending=True) for _ in range(1000))  # 0: off
    assert all(inj.socket_failure(1, sending=False) for _ in range(100))
    hits = sum(inj.socket_failure(50, sending=True) for _ in range(50000))
    assert 800 < hits < 1200  # about 1 in 50


def test_blackhole_by_peer_type_and_never_mgr_or_unknown():
    flags = {"mon": True, "osd": False, "mds": False, "client": False}
    assert Injector(0, "mds.a", "mon.a", 0).blackholed(flags)
    assert not Injector(0, "mds.a", "osd.0", 0).blackholed(flags)
    assert not Injector(0, "mds.a", "mgr.x", 0).blackholed(dict(flags, mgr=True))
    assert not Injector(0, "mds.a", "", 0).blackholed(flags)


def test_delay_only_from_listed_peer_types_and_below_max():
    mds = Injector(5, "osd.0", "mds.a", 0)
    delays = [mds.deliver_at(1000.0 * i, "client mds", 1.0, 0.5) - 1000.0 * i
              for i in range(500)]
    assert all(0 <= d < 0.5 for d in delays) and max(delays) > 0.4
    mon = Injector(5, "osd.0", "mon.a", 0)
    assert all(mon.deliver_at(float(i), "client mds", 1.0, 0.5) == float(i) for i in range(50))
    assert mds.deliver_at(1e6, "client mds", 0.0, 0.5) == 1e6  # probability 0
    assert delay_types(" mds,osd  client ") == {"mds", "osd", "client"}


def test_delayed_messages_keep_their_order():
    """Ceph's DelayedDelivery is a FIFO: a message that draws no delay still waits for an
    earlier delayed one."""
    inj = Injector(9, "mds.a", "osd.0", 0)
    times = [inj.deliver_at(0.01 * i, "osd", 0.5, 3.0) for i in range(300)]
    assert times == sorted(times)
    assert any(t > 0.01 * i for i, t in enumerate(times))


def test_peer_type():
    assert [peer_type(e) for e in ("mds.a", "client.4107", "osd.0", "mon.a", "mgr.x", "x")] \
        == ["mds", "client", "osd", "mon", "", ""]


def test_options_have_cephs_names_and_defaults_and_change_at_run_time():
    c = cfg.Config("mds.a")
    msgr = Messenger(c, "mds.a")
    assert msgr.socket_failures() == 0
    assert msgr.blackhole() == {"mon": False, "osd": False, "mds": False, "client": False}
    assert msgr.delay() == ("", 0.0, 1.0)
    changed = c.set_runtime({"ms_blackhole_mon": "true", "ms inject socket failures": "500",
                             "ms_inject_delay_type": "mds osd"})
    assert set(changed) == {"ms_blackhole_mon", "ms_inject_socket_failures",
                            "ms_inject_delay_type"}
    assert msgr.blackhole()["mon"] and msgr.socket_failures() == 500
    with pytest.raises(ValueError, match="ms_inject_delay_probability: -1"):
        cfg.parse_value("ms_inject_delay_probability", "-1")
    c.set_override("ms_blackhole_mon", "false")  # `tell ... config set` beats the mon
    assert not msgr.blackhole()["mon"]

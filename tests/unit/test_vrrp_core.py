"""The sans-IO VRRP instance (vip.vrrp), driven with plain numbers and paired against itself.

`Net` plays the wire between two or three cores the way h11's tests pair two connections:
a SendAdvert effect of one is delivered at once as an Advert to every other live node.
Behaviour checked against keepalived/vrrp/vrrp.c (vrrp_state_backup, vrrp_state_master_rx,
vrrp_state_leave_master) and RFC 5798 §6.
"""

from __future__ import annotations

import pytest

from vip.vrrp import (
    BACKUP,
    FAULT,
    INIT,
    MASTER,
    STOP,
    Advert,
    Instance,
    InstanceConfig,
    Log,
    Notify,
    ReleaseVips,
    SendAdvert,
    TakeVips,
    master_down_interval,
    skew_time,
)

A, B, C = "127.0.0.2", "127.0.0.3", "127.0.0.4"


def cfg(src, prio=100, **kw) -> InstanceConfig:
    kw.setdefault("adver_int", 1.0)
    kw.setdefault("version", 3)
    return InstanceConfig(name="VI_1", vrid=51, src_ip=src, priority=prio, **kw)


class Net:
    def __init__(self, *cfgs: InstanceConfig) -> None:
        self.nodes = {c.src_ip: Instance(c) for c in cfgs}
        self.now = 0.0
        self.down: set[str] = set()
        self.partitioned = False
        self.logs: list[tuple[float, str, str]] = []
        self.effects: list[tuple[float, str, object]] = []

    def apply(self, ip: str, effects: list) -> None:
        queue = [(ip, e) for e in effects]
        while queue:
            src, e = queue.pop(0)
            self.effects.append((self.now, src, e))
            if isinstance(e, Log):
                self.logs.append((self.now, src, e.message))
            if isinstance(e, SendAdvert) and not self.partitioned:
                inst = self.nodes[src]
                for dst, other in self.nodes.items():
                    if dst != src and dst not in self.down:
                        ad = Advert(src, inst.cfg.vrid, e.priority, inst.cfg.adver_int)
                        queue += [(dst, x) for x in other.receive(ad, self.now)]

    def start(self, ip: str | None = None) -> None:
        for n, inst in self.nodes.items():
            if ip is None or n == ip:
                self.down.discard(n)
                self.apply(n, inst.start(self.now))

    def kill(self, ip: str) -> None:
        self.down.add(ip)  # kill -9: silence, no priority-0 advert

    def stop(self, ip: str) -> None:
        self.apply(ip, self.nodes[ip].stop(self.now))
        self.down.add(ip)

    def restart(self, c: InstanceConfig) -> None:
        self.nodes[c.src_ip] = Instance(c)
        self.start(c.src_ip)

    def run_until(self, t: float) -> None:
        while True:
            live = [(d, ip) for ip, i in self.nodes.items()
                    if ip not in self.down and (d := i.deadline()) is not None]
            if not live or min(live)[0] > t:
                break
            d, ip = min(live)
            self.now = max(self.now, d)
            self.apply(ip, self.nodes[ip].tick(self.now))
        self.now = t

    def masters(self) -> list[str]:
        return [ip for ip, i in self.nodes.items() if ip not in self.down and i.state == MASTER]

    def became_master_at(self, ip: str) -> float:
        return max(t for t, src, m in self.logs
                   if src == ip and m == "(VI_1) Entering MASTER STATE")

    def messages(self, ip: str) -> list[str]:
        return [m for _, src, m in self.logs if src == ip]


# -- the formula ------------------------------------------------------------------------------

def test_master_down_interval_is_three_adverts_plus_skew():
    # v3 (RFC 5798 §6.1): skew = (256 − prio) × advert_int / 256
    assert skew_time(100, 1.0, 3) == pytest.approx(156 / 256)
    assert master_down_interval(100, 1.0, 3) == pytest.approx(3.609375)
    assert master_down_interval(128, 1.0, 3) == pytest.approx(3.5)  # keepalived.conf(5) example
    assert master_down_interval(90, 0.2, 3) == pytest.approx(0.6 + 166 * 0.2 / 256)
    # v2 (RFC 3768): the skew is in whole seconds whatever the interval
    assert master_down_interval(100, 2.0, 2) == pytest.approx(6 + 156 / 256)


# -- start-up and election ----------------------------------------------------------------------

def test_highest_priority_wins_and_the_other_stays_backup():
    net = Net(cfg(A, 150), cfg(B, 100))
    net.start()
    assert net.nodes[A].state == BACKUP and net.nodes[B].state == BACKUP
    assert "(VI_1) Entering BACKUP STATE (init)" in net.messages(A)
    net.run_until(20)
    assert net.masters() == [A]
    assert net.became_master_at(A) == pytest.approx(master_down_interval(150, 1.0, 3))
    assert net.nodes[B].master_src == A and net.nodes[B].master_priority == 150


def test_owner_with_state_master_takes_over_at_once():
    net = Net(cfg(A, 255, initial_state=MASTER), cfg(B, 100))
    net.start()
    assert net.masters() == [A]
    assert net.became_master_at(A) == 0


def test_state_master_below_255_still_waits_the_down_interval():
    net = Net(cfg(A, 150, initial_state=MASTER))
    net.start()
    assert net.nodes[A].state == BACKUP
    net.run_until(3.0)
    assert net.masters() == []
    net.run_until(4.0)
    assert net.masters() == [A]


def test_becoming_master_sends_an_advert_before_taking_the_vips_and_notifies():
    net = Net(cfg(A, 150))
    net.start()
    net.run_until(5)
    kinds = [e for t, src, e in net.effects if t > 0]
    first = [type(e) for e in kinds[:5]]
    assert first == [Log, SendAdvert, Log, TakeVips, Log]
    assert Notify(MASTER, 150) in kinds


# -- failures -----------------------------------------------------------------------------------

def test_kill_of_master_backup_takes_over_within_the_down_interval():
    net = Net(cfg(A, 150), cfg(B, 100))
    net.start()
    net.run_until(10)
    net.kill(A)
    net.run_until(30)
    assert net.masters() == [B]
    taken = net.became_master_at(B)
    # B's timer was last reset by an advert sent at most one interval before the kill
    assert 10 < taken <= 10 + master_down_interval(100, 1.0, 3)
    assert "(VI_1) Receive advertisement timeout" in net.messages(B)


def test_clean_stop_sends_priority_zero_and_backup_takes_over_after_the_skew_only():
    net = Net(cfg(A, 150), cfg(B, 100))
    net.start()
    net.run_until(10.5)
    net.stop(A)
    assert (10.5, A, SendAdvert(0)) in net.effects
    assert (10.5, A, ReleaseVips()) in net.effects
    assert net.nodes[A].state == STOP
    net.run_until(20)
    assert net.became_master_at(B) == pytest.approx(10.5 + skew_time(100, 1.0, 3))


def test_returning_higher_priority_preempts():
    net = Net(cfg(A, 150), cfg(B, 100))
    net.start(B)
    net.run_until(10)
    assert net.masters() == [B]
    net.restart(cfg(A, 150))
    net.run_until(20)
    assert net.masters() == [A]
    assert "(VI_1) received lower priority (100) advert from 127.0.0.2 - discarding".replace(
        "127.0.0.2", B) in net.messages(A)
    assert (f"(VI_1) Master received advert from {A} with higher priority 150, ours 100"
            in net.messages(B))
    assert net.messages(B)[-2:] == ["(VI_1) Entering BACKUP STATE", "(VI_1) removing VIPs."]
    # A preempts when its down timer runs out although adverts keep coming
    assert net.became_master_at(A) == pytest.approx(10 + master_down_interval(150, 1.0, 3))


def test_nopreempt_keeps_the_current_master():
    net = Net(cfg(A, 150), cfg(B, 100))
    net.start(B)
    net.run_until(10)
    net.restart(cfg(A, 150, nopreempt=True))
    net.run_until(60)
    assert net.masters() == [B]
    assert net.nodes[A].state == BACKUP


def test_preempt_delay_postpones_preemption():
    net = Net(cfg(A, 150), cfg(B, 100))
    net.start(B)
    net.run_until(10)
    net.restart(cfg(A, 150, preempt_delay=5.5))
    net.run_until(30)
    assert net.masters() == [A]
    taken = net.became_master_at(A)
    # lower adverts are accepted for 5.5 s after start-up, then discarded (keepalived.conf(5):
    # priority 128 with preempt_delay 2 preempts after about 5.5 s)
    assert 10 + 5.5 < taken <= 10 + 5.5 + master_down_interval(150, 1.0, 3)
    assert not any("discarding" in m for t, src, m in net.logs if src == A and t < 15.5)


def test_equal_priority_the_higher_address_wins_after_a_split():
    net = Net(cfg(A, 100), cfg(B, 100), cfg(C, 100))
    net.partitioned = True
    net.start()
    net.run_until(5)
    assert sorted(net.masters()) == [A, B, C]
    net.partitioned = False
    net.run_until(10)
    assert net.masters() == [C]
    assert (f"(VI_1) Master received advert from {C} with same priority 100 but higher IP "
            "address than ours") in net.messages(B)
    assert any("with lower priority 100, ours 100, forcing new election" in m
               for m in net.messages(C))


def test_master_answers_a_lower_priority_advert_by_forcing_a_new_election():
    inst = Instance(cfg(B, 150))
    inst.start(0)
    inst.tick(10)
    assert inst.state == MASTER
    effects = inst.receive(Advert(A, 51, 100, 1.0), 10.2)
    assert effects == [Log(f"(VI_1) Received advert from {A} with lower priority 100, "
                           "ours 150, forcing new election"), SendAdvert(150)]
    assert inst.receive(Advert(A, 52, 200, 1.0), 10.3) == []  # another VRID


def test_backup_learns_the_masters_advert_interval():
    inst = Instance(cfg(B, 100, adver_int=1.0))
    inst.start(0)
    inst.receive(Advert(A, 51, 150, 0.25), 1.0)
    assert inst.master_adver_int == 0.25
    assert inst.deadline() == pytest.approx(1.0 + master_down_interval(100, 0.25, 3))


# -- track scripts ------------------------------------------------------------------------------

def test_weight_zero_script_waits_for_its_first_result_then_faults():
    a = cfg(A, 150, track={"chk": 0})
    net = Net(a, cfg(B, 100))
    net.start()
    assert net.nodes[A].state == INIT
    net.apply(A, net.nodes[A].script_status("chk", True, 0))
    net.run_until(10)
    assert net.masters() == [A]
    net.apply(A, net.nodes[A].script_status("chk", False, 10))
    assert net.nodes[A].state == FAULT
    assert net.messages(A)[-3:] == ["(VI_1) Entering FAULT STATE", "(VI_1) sent 0 priority",
                                    "(VI_1) removing VIPs."]
    assert (10, A, SendAdvert(0)) in net.effects  # the backup need not wait
    net.run_until(20)
    assert net.masters() == [B]
    assert net.became_master_at(B) == pytest.approx(10 + skew_time(100, 1.0, 3))
    net.apply(A, net.nodes[A].script_status("chk", True, 20))
    assert net.nodes[A].state == BACKUP
    net.run_until(40)
    assert net.masters() == [A]  # and preempts again


def test_failed_first_result_of_a_weight_zero_script_is_fault():
    inst = Instance(cfg(A, 100, track={"chk": 0}))
    assert inst.start(0) == []
    effects = inst.script_status("chk", False, 0.5)
    assert inst.state == FAULT
    assert effects == [Log("(VI_1) Entering FAULT STATE (init)"), Notify(FAULT, 100)]


def test_negative_weight_moves_the_vip_as_cephadm_configures_it():
    # cephadm ingress: priority 100 and 90, check weight -20
    net = Net(cfg(A, 100, track={"check_backend": -20}), cfg(B, 90))
    net.start()
    net.apply(A, net.nodes[A].script_status("check_backend", True, 0))
    net.run_until(10)
    assert net.masters() == [A]
    net.apply(A, net.nodes[A].script_status("check_backend", False, 10))
    assert "(VI_1) Changing effective priority from 100 to 80" in net.messages(A)
    net.run_until(30)
    assert net.masters() == [B]
    assert (f"(VI_1) received lower priority (80) advert from {A} - discarding"
            in net.messages(B))
    assert net.became_master_at(B) <= 10 + 1 + master_down_interval(90, 1.0, 3)


def test_weights_clamp_to_254_and_never_move_the_owner():
    inst = Instance(cfg(A, 250, track={"up": 10}))
    inst.start(0)
    inst.script_status("up", True, 1)
    assert inst.effective_priority == 254
    owner = Instance(cfg(A, 255, track={"down": -50}))
    owner.start(0)
    owner.script_status("down", False, 1)
    assert owner.effective_priority == 255
    low = Instance(cfg(A, 10, track={"down": -50}))
    low.start(0)
    low.script_status("down", False, 1)
    assert low.effective_priority == 1


def test_notify_effects_carry_the_state_and_effective_priority():
    net = Net(cfg(A, 150), cfg(B, 100))
    net.start()
    net.run_until(10)
    net.stop(A)
    notifies = [(src, e) for _, src, e in net.effects if isinstance(e, Notify)]
    assert notifies[:2] == [(A, Notify(BACKUP, 150)), (B, Notify(BACKUP, 100))]
    assert (A, Notify(MASTER, 150)) in notifies
    assert (A, Notify(STOP, 150)) in notifies


def test_counters_and_json_fields_as_keepalived_dumps_them():
    net = Net(cfg(A, 150), cfg(B, 100))
    net.start()
    net.run_until(10.5)
    net.stop(A)
    net.run_until(12)
    a, b = net.nodes[A], net.nodes[B]
    assert a.stats["become_master"] == 1 and a.stats["release_master"] == 1
    assert a.stats["pri_zero_sent"] == 1
    assert b.stats["pri_zero_rcvd"] == 1 and b.stats["become_master"] == 1
    assert b.stats["advert_rcvd"] == a.stats["advert_sent"]
    assert a.data()["state"] == 98 and b.data()["state"] == 2  # STOP, MASTER (vrrp.h)
    assert b.data()["vipset"] is True and a.data()["vipset"] is False
    assert (b.data()["iname"], b.data()["vrid"], b.data()["base_priority"]) == ("VI_1", 51, 100)

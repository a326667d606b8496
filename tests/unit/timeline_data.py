"""A synthetic thrash run for the timeline tests: seeded, 30 minutes by default."""

from __future__ import annotations

import random

from client import nemesis
from client.timeline import Timeline, changed, process_lanes, unanswered


def synthetic(minutes: float = 30.0, seed: int = 4) -> Timeline:
    """Three MDS daemons (two ranks and a follower), a fault every few seconds from the
    nemesis schedule, a failover after each MDS fault, health and client answers to match."""
    end = minutes * 60
    rng = random.Random(seed)
    faults = nemesis.schedule(nemesis.Options(seed=seed, duration=end - 20, delay=4.0,
                                              grace=1.0, ranks=2, max_revive_delay=3))
    tl = Timeline(end=end, title="synthetic")
    names = ["a", "b", "c"]
    roles = {"a": "up:active", "b": "up:active", "c": "up:standby-replay"}
    for n in names:
        tl.note(n, 0.0, roles[n])
    changed(tl.health, 0.0, "HEALTH_OK")
    answers, t = [], 0.0
    while t < end:
        t += rng.expovariate(20)
        answers.append(t)
    records = []
    for f in faults:
        rec = {"index": f.index, "kind": f.kind, "role": f.target, "target": None,
               "applied_at": f.at, "healed_at": f.heal_at, "recovered_after": None}
        records.append(rec)
        if f.kind in ("mon_restart", "osd_restart", "osd_pause"):
            rec["target"] = f.target
        elif f.kind in ("kill", "restart", "mds_fail", "stop_long", "blackhole"):
            victim = rng.choice([n for n in names if roles[n] == "up:active"])
            spare = next(n for n in names if roles[n] != "up:active")
            rec["target"] = victim
            down = f.at + 1.0
            tl.note(victim, f.at + 0.01, "absent")
            tl.note(spare, down, "up:replay")
            tl.note(spare, down + 0.5, "up:reconnect")
            tl.note(spare, down + 0.8, "up:rejoin")
            tl.note(spare, down + 1.0, "up:active")
            tl.note(victim, max(f.heal_at, down + 1.2), "up:standby-replay")
            roles[victim], roles[spare] = "up:standby-replay", "up:active"
            changed(tl.health, f.at + 0.2, "HEALTH_WARN")
            changed(tl.health, down + 1.5, "HEALTH_OK")
            answers = [a for a in answers if not f.at < a < down + 1.0]
            rec["recovered_after"] = round(down + 1.0 - f.at, 3)
        if f.kind == "mon_restart":
            changed(tl.health, f.at, "no answer")
            changed(tl.health, f.heal_at + 0.5, "HEALTH_OK")
    tl.faults = records
    tl.processes = process_lanes(records, ["mon.a", "osd.0"], end)
    tl.load = (0.0, end)
    tl.gaps = unanswered(answers, 0.0, end)
    return tl

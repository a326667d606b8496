"""Client sessions across failover with real processes, fast profile (ref C1–C6, R3):
session_timeout 3 s and session_autoclose 6 s for a new fs, mds_reconnect_timeout 2 s."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import time

import pytest
import trio

from client.fsclient import FSClient
from tests.integration.cluster import Cluster, active
from tests.integration.test_metadata import _raw_sessions, ls, mkdir

pytestmark = [pytest.mark.processes, pytest.mark.timeout(180)]


def _blocklist(c: Cluster) -> list[str]:
    return [e["addr"] for e in c.cli_json("osd", "blocklist", "ls")]


def _history_lines(path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (FileNotFoundError, json.JSONDecodeError):
        return []


def test_C6_paused_client_is_evicted_blocklisted_and_refused_after_sigcont(cluster_factory,
                                                                          tmp_path):
    c = cluster_factory().start(("a", "b"))
    history = tmp_path / "history.jsonl"
    with c.load(history, "--clients", "1", "--duration", "25") as load:
        c.wait_for(lambda: sum(r.get("result") == "ok" for r in _history_lines(history)) > 20,
                   30, "the load to get going")
        who = f"mds.{active(c.fs_dump())['name']}"
        [session] = c.cli_json("tell", who, "session", "ls")
        addr = session["inst"].split(" v1:")[1]
        os.kill(load.pid, signal.SIGSTOP)
        try:
            stopped = time.monotonic()
            c.wait_for(lambda: addr in _blocklist(c), 30, "the paused client's eviction")
            # session_autoclose (6 s) since its last renewal, up to a second before the stop
            assert time.monotonic() - stopped >= 4.0
            assert c.cli_json("tell", who, "session", "ls") == []
            log = c.cli("log", "last", "50").stdout
            who = f"{session['client_metadata']['hostname']} ({session['id']})"
            assert f"evicting unresponsive client {who}, after " in log
            before = len(_history_lines(history))
        finally:
            os.kill(load.pid, signal.SIGCONT)
        out, err = load.communicate(timeout=60)
    assert "was evicted" in err, err[-2000:]  # it reports the eviction ...
    after = _history_lines(history)[before:]
    refused = [r for r in after if r.get("type") == "complete" and r.get("errno") == 108]
    assert refused or any(r.get("result") == "unknown" for r in after)  # ... and is refused
    # nothing it asked for after it was resumed succeeded (an answer that was already in its
    # socket when it was stopped may still complete the operation then in flight)
    asked = {r["n"] for r in after if r.get("type") == "invoke"}
    assert not [r for r in after if r.get("type") == "complete" and r.get("result") == "ok"
                and r["n"] in asked]
    c.verify(history)


def test_R3_unsafe_then_killed_request_comes_back_through_clientreplay(cluster_factory):
    c = cluster_factory().start(("a", "b"))
    mkdir(c, "/before")
    old = active(c.fs_dump())
    who = f"mds.{old['name']}"

    def hold_journal():  # the session is open first: opening one journals too
        c.ok("config", "set", who, "mds_log_pause", "true")
        c.wait_for(lambda: c.cli_json("tell", who, "config", "get", "mds_log_pause")
                   == {"mds_log_pause": "true"}, 30, "the journal held")

    async def run():
        async with FSClient.open(f"127.0.0.1:{c.port}", fs_name="cephfs", timeout=60,
                                 auth=c.auth_key()) as fs:
            await fs.stat("/before")
            await trio.to_thread.run_sync(hold_journal)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(fs.mkdir, "/unsafe")
                with trio.fail_after(20):
                    while not fs.core.unsafe:  # the unsafe reply came; nothing is journaled
                        await trio.sleep(0.01)
                os.kill(c.pid_of(old["name"]), signal.SIGKILL)
            return [name for name, _ in await fs.ls("/")]

    names = trio.run(run)
    assert sorted(names) == ["before", "unsafe"]
    new = active(c.fs_dump())
    log = c.log(f"mds.{new['name']}")
    assert "clientreplay_start" in log and "clientreplay_done" in log
    assert sorted(ls(c, "/")) == ["before", "unsafe"]


def test_C2_client_that_does_not_reconnect_holds_reconnect_then_is_evicted(cluster_factory):
    c = cluster_factory(cephx=False).start(("a", "b"))  # raw protocol sessions: auth none
    old = active(c.fs_dump())
    socks = _raw_sessions(old["addr"], 1)  # a session whose client never reconnects
    try:
        os.kill(c.pid_of(old["name"]), signal.SIGKILL)
        dump = c.wait_map(lambda d: (a := active(d)) is not None and a["gid"] != old["gid"]
                          and d, 30, "the standby to take over")
        new = f"mds.{active(dump)['name']}"
        log = c.log(new)
        assert "reconnect_clients -- 1 sessions" in log
        assert re.search(r"evicting unresponsive client 9000, after waiting [23](\.\d+)? "
                         r"seconds during MDS startup", log)  # the 2 s timeout
        assert "127.0.0.1:0/9000" in _blocklist(c)
    finally:
        for s in socks:
            s.close()


def test_C2_session_evict_ends_the_reconnect_wait_at_once(cluster_factory):
    c = cluster_factory(conf={"mds": {"mds_reconnect_timeout": "60"}},
                        cephx=False).start(("a", "b"))  # raw protocol sessions: auth none
    old = active(c.fs_dump())
    socks = _raw_sessions(old["addr"], 1)
    try:
        os.kill(c.pid_of(old["name"]), signal.SIGKILL)
        dump = c.wait_map(lambda d: (a := d["filesystems"][0]["mdsmap"]["info"]) and any(
            i["state"] == "up:reconnect" for i in a.values()) and d, 30, "up:reconnect")
        info = next(i for i in dump["filesystems"][0]["mdsmap"]["info"].values()
                    if i["state"] == "up:reconnect")
        sessions = c.cli_json("tell", f"mds.{info['name']}", "session", "ls")
        assert [(s["id"], s["reconnecting"]) for s in sessions] == [(9000, True)]
        t0 = time.monotonic()
        res = c.cli("tell", f"mds.{info['name']}", "session", "evict", "9000")
        assert res.returncode == 0, res.stderr
        c.wait_map(lambda d: (a := active(d)) is not None and a["gid"] == info["gid"], 30,
                   "the new holder active")
        assert time.monotonic() - t0 < 10  # not the 60 s reconnect timeout
        assert "127.0.0.1:0/9000" in _blocklist(c)
        log = c.cli("log", "last", "50").stdout
        assert "Evicting (and blocklisting) client session 9000 (127.0.0.1:0/9000)" in log
    finally:
        for s in socks:
            s.close()


def test_mount_fails_at_once_while_the_only_mds_is_laggy(cluster_factory):
    # Client::mount refuses a map whose rank holder is laggy (STUCK_UNAVAILABLE): no standby
    # can replace it, so the client fails at once rather than after its request timeout
    c = cluster_factory().start(("a",))
    pid = c.pid_of("a")
    os.kill(pid, signal.SIGSTOP)
    try:
        c.wait_map(lambda d: active(d) is not None and active(d).get("laggy_since"), 30,
                   "mds.a to be marked laggy")
        t0 = time.monotonic()
        res = c.cli("client", "--fs", "cephfs", "--timeout", "60", "ls", "/")
        assert res.returncode == errno.EHOSTUNREACH, (res.returncode, res.stderr)
        assert time.monotonic() - t0 < 10  # well inside the 60 s request timeout
        assert "mds cluster unavailable: rank 0 of cephfs is held by mds.a, which is laggy" \
            in res.stderr
    finally:
        os.kill(pid, signal.SIGCONT)
    c.wait_map(lambda d: active(d) is not None and not active(d).get("laggy_since"), 30,
               "mds.a to be no longer laggy")
    assert c.cli("client", "--fs", "cephfs", "ls", "/").returncode == 0

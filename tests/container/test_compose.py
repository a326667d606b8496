"""compose.yaml for real (issue 5): one cluster, brought up once for this module, walked through
the scenarios in order. Each test waits for what a user would see (`mdsemu fs dump -f json`,
health, container state, logs), polling against a deadline.

    up -d -> HEALTH_OK, mds.a active       cephx: a key per entity, a peer without one refused
    kill the active -> a standby takes over, load goes on
    restart mon -> the map is kept         down, up -> the map and the keys are kept
    stop a standby -> clean shutdown, removed at once
    network cut of the active -> laggy, replaced; reconnected -> respawns as a standby
    stop the load -> `mdsemu client verify` finds nothing lost      down -v -> nothing left
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from tests.container.conftest import ROOT, STATUS, Docker

pytestmark = pytest.mark.containers

HISTORY = "/var/lib/mdsemu/history/load.jsonl"
UP_TIMEOUT = 120.0  # seconds for `up -d` to reach HEALTH_OK with every daemon in the map
FAILOVER_TIMEOUT = 30.0  # fast profile: beacon grace 1 s, reconnect 2 s


class Cluster:
    """A compose project of compose.yaml, and what the tests ask of it."""

    def __init__(self, docker: Docker, image: str) -> None:
        self.docker = docker
        self.project = f"mdsemu-test-{uuid.uuid4().hex[:8]}"
        self.env = {
            # Everything compose.yaml reads, so that a .env beside it changes nothing here.
            "MDSEMU_IMAGE": image,
            "MDSEMU_PROFILE": "fast",
            "MDSEMU_FS": "cephfs",
            "MDSEMU_MAX_MDS": "1",
            "MDSEMU_STANDBY_REPLAY": "false",
            "MDSEMU_OPTIONS": "",
            "MDSEMU_LOAD_CLIENTS": "2",
            "MDSEMU_LOAD_PAUSE": "0.05",
            "MDSEMU_AUTH": "cephx",
        }
        self.facts: dict[str, float] = {}

    # -- commands
    def compose(self, *args: str, timeout: float = 120, check: bool = True
                ) -> subprocess.CompletedProcess:
        p = subprocess.run(
            [*self.docker.compose, "-p", self.project, "-f", str(ROOT / "compose.yaml"), *args],
            capture_output=True, text=True, timeout=timeout, cwd=ROOT,
            env={**os.environ, **self.env},
        )
        if check and p.returncode != 0:
            pytest.fail(f"compose {' '.join(args)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
        return p

    def container(self, service: str) -> str:
        p = docker_cmd("ps", "-a", "-q", "--filter",
                       f"label=com.docker.compose.project={self.project}", "--filter",
                       f"label=com.docker.compose.service={service}", "--filter",
                       "label=com.docker.compose.oneoff=False")
        ids = p.stdout.split()
        assert ids, f"no container for service {service}"
        return ids[0]

    def inspect(self, service: str) -> dict:
        return json.loads(docker_cmd("inspect", self.container(service)).stdout)[0]

    def mdsemu(self, *words: str, via: str = "watch", timeout: float = 30
               ) -> subprocess.CompletedProcess:
        """`mdsemu WORDS` inside a container of the cluster (the watch service is never broken
        by the scenarios, so it is where the tests ask their questions)."""
        return docker_cmd("exec", self.container(via), "mdsemu", "--connect-timeout", "5",
                          *words, check=False, timeout=timeout)

    def fsmap(self) -> dict | None:
        p = self.mdsemu("fs", "dump", "-f", "json")
        try:
            return json.loads(p.stdout) if p.returncode == 0 else None
        except ValueError:
            return None

    def health(self) -> str | None:
        p = self.mdsemu("health", "-f", "json")
        try:
            return json.loads(p.stdout)["status"] if p.returncode == 0 else None
        except (ValueError, KeyError):
            return None

    def logs(self, service: str, tail: int | None = None) -> str:
        args = ["logs"] + ([f"--tail={tail}"] if tail else []) + [self.container(service)]
        p = docker_cmd(*args, check=False)
        return p.stdout + p.stderr

    def ok_ops(self) -> int:
        """Acknowledged operations of the client load so far."""
        p = docker_cmd("exec", self.container("client"), "grep", "-c", '"result": "ok"',
                       HISTORY, check=False)
        return int(p.stdout.strip() or 0)

    def wait(self, what: str, check, timeout: float, services=("watch",)):
        """Poll `check()` until it returns something true; fail with the logs if it does not
        within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {s}\n{self.logs(s, tail=30)}" for s in services)
                pytest.fail(f"timed out after {timeout:g}s waiting for {what}\n{tails}")
            time.sleep(0.3)

    # -- the map
    @staticmethod
    def daemons(fsmap: dict) -> dict[str, dict]:
        """name -> info of every MDS in the map (standbys and rank holders)."""
        found = {s["name"]: s for s in fsmap["standbys"]}
        for fs in fsmap["filesystems"]:
            for info in fs["mdsmap"]["info"].values():
                found[info["name"]] = info
        return found

    @staticmethod
    def rank0(fsmap: dict) -> dict | None:
        for fs in fsmap["filesystems"]:
            mdsmap = fs["mdsmap"]
            if mdsmap["fs_name"] == "cephfs":
                gid = mdsmap["up"].get("mds_0")
                return mdsmap["info"].get(f"gid_{gid}") if gid is not None else None
        return None

    def active(self, not_name: str | None = None) -> dict | None:
        """Rank 0's info once it is up:active (held by someone other than `not_name`)."""
        m = self.fsmap()
        info = self.rank0(m) if m else None
        if info and info["state"] == "up:active" and info["name"] != not_name:
            return info
        return None

    def standby(self, name: str, not_gid: int | None = None) -> dict | None:
        m = self.fsmap()
        for s in m["standbys"] if m else []:
            if s["name"] == name and s["gid"] != not_gid:
                return s
        return None

    def healthy(self) -> bool:
        """HEALTH_OK, rank 0 active and all three MDS daemons in the map."""
        m = self.fsmap()
        return bool(m and self.health() == "HEALTH_OK" and self.rank0(m)
                    and self.rank0(m)["state"] == "up:active" and len(self.daemons(m)) == 3)


def docker_cmd(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


def project_leftovers(project: str) -> list[str]:
    label = f"label=com.docker.compose.project={project}"
    found = []
    for kind, cmd in (("container", ["ps", "-a", "-q"]), ("volume", ["volume", "ls", "-q"]),
                      ("network", ["network", "ls", "-q"])):
        ids = docker_cmd(*cmd, "--filter", label, check=False).stdout.split()
        found += [f"{kind} {i}" for i in ids]
    return found


@pytest.fixture(scope="module")
def cluster(docker: Docker, image: str):
    c = Cluster(docker, image)
    t0 = time.monotonic()
    try:
        c.compose("up", "-d", "--no-build", timeout=300)
        c.wait("HEALTH_OK, mds.a active and three MDS daemons in the map", c.healthy, UP_TIMEOUT,
               services=("setup", "watch", "mon"))
        c.facts["up"] = time.monotonic() - t0
        yield c
    finally:
        c.compose("down", "-v", "--remove-orphans", "-t", "10", timeout=300, check=False)
        timings = {**docker.timings, "cluster up": c.facts.get("up", 0.0),
                   "scenarios": time.monotonic() - t0}
        STATUS["timings"] = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())


def service_of(name: str) -> str:
    return f"mds-{name}"


# The first test pays for the image build (a cold base image: debootstrap) and `up`.
@pytest.mark.timeout(1200)
def test_up_reaches_health_ok(cluster: Cluster) -> None:
    info = cluster.active()
    assert info is not None and info["name"] == "a", f"mds.a should hold rank 0, not {info}"
    # one generated ceph.conf, the same in every container
    confs = {s: docker_cmd("exec", cluster.container(s), "cat", "/etc/ceph/ceph.conf").stdout
             for s in ("mon", "osd", "mds-a", "mds-b", "client")}
    assert len(set(confs.values())) == 1, confs
    assert "mdsemu_profile = fast" in confs["mon"]
    # the daemon is PID 1 (so it gets docker's SIGTERM itself)
    cmdline = docker_cmd("exec", cluster.container("mds-a"), "cat", "/proc/1/cmdline").stdout
    assert "mdsemu-mds" in cmdline, cmdline
    # JSON logs: the daemons' structlog lines, the cluster log from the watch service
    for service in ("mon", "mds-a", "watch"):
        lines = [line for line in cluster.logs(service).splitlines() if line.strip()]
        assert lines, f"{service} logged nothing"
        for line in lines:
            rec = json.loads(line)
            assert "event" in rec and "timestamp" in rec, line
    assert "daemon mds.a is now active in filesystem cephfs as rank 0" in cluster.logs("watch")
    # the compose health checks (`mdsemu health`, `mdsemu tell mds.X status`) pass
    cluster.wait("the mon's and mds-a's health checks to pass", lambda: all(
        cluster.inspect(s)["State"].get("Health", {}).get("Status") == "healthy"
        for s in ("mon", "mds-a")), 60)


ENTITIES = ["client.admin", "client.load", "client.nfs.a", "client.nfs.b", "mds.a", "mds.b",
            "mds.c", "mon.", "osd.0"]
NOBODY = """
from common import keyring
keyring.write("/tmp/nobody.keyring", {"client.nobody": keyring.Entry(keyring.new_key())})
"""


def key_files(cluster: Cluster) -> dict[str, str]:
    """Each key file of the volume `keys` and its checksum, as the mon's container sees it."""
    out = docker_cmd("exec", cluster.container("mon"), "sh", "-c",
                     "cd /etc/ceph/keys && md5sum *.keyring").stdout
    return {name: digest for digest, name in (line.split() for line in out.splitlines())}


@pytest.mark.timeout(120)
def test_cephx_gives_every_entity_its_key_and_refuses_a_peer_without_one(
        cluster: Cluster) -> None:
    """Issue 15 in compose: cephx is on, `auth ls` lists every entity of the compose file,
    each has its keyring file (0600, read-only outside the mon's container), the load and the
    NFS heads run as their own users with their own caps, and a peer the monitor does not
    know, or one without a key, gets nowhere."""
    conf = docker_cmd("exec", cluster.container("osd"), "cat", "/etc/ceph/ceph.conf").stdout
    assert "auth_cluster_required = cephx" in conf
    p = cluster.mdsemu("auth", "ls", "-f", "json")
    assert p.returncode == 0, p.stderr
    dump = {e["entity"]: e for e in json.loads(p.stdout)["auth_dump"]}
    assert sorted(dump) == ENTITIES
    assert dump["client.nfs.a"]["caps"]["osd"] == \
        "allow rw pool=cephfs_metadata namespace=ganesha"
    assert sorted(key_files(cluster)) == [f"ceph.{e.rstrip('.')}.keyring" for e in ENTITIES]
    ls = docker_cmd("exec", cluster.container("mds-a"), "ls", "-l",
                    "/etc/ceph/keys/ceph.mds.a.keyring").stdout
    assert ls.startswith("-rw------- "), ls
    touch = docker_cmd("exec", cluster.container("mds-a"), "touch", "/etc/ceph/keys/x",
                       check=False)
    assert touch.returncode != 0 and "Read-only file system" in touch.stderr
    client = cluster.container("client")
    # the load's user reads the maps but cannot change them
    p = docker_cmd("exec", client, "mdsemu", "--id", "load", "fs", "set", "cephfs",
                   "max_mds", "2", check=False)
    assert p.returncode != 0 and "Error EACCES: access denied" in p.stderr, p.stderr
    assert cluster.fsmap()["filesystems"][0]["mdsmap"]["max_mds"] == 1
    # no key at all: the tool says so before it tries
    p = docker_cmd("exec", client, "mdsemu", "-n", "client.nobody", "fs", "dump", check=False)
    assert p.returncode != 0 and "unable to find a keyring for client.nobody" in p.stderr
    # a key of its own making: the monitor refuses it, and says so in its log
    docker_cmd("exec", client, "python", "-c", NOBODY)
    p = docker_cmd("exec", client, "mdsemu", "-n", "client.nobody", "-k",
                   "/tmp/nobody.keyring", "--connect-timeout", "3", "fs", "dump", check=False)
    assert p.returncode != 0 and "authentication failed" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    refusals = [json.loads(line) for line in cluster.logs("mon").splitlines()
                if "refusing connection" in line]
    assert any(r["entity"] == "client.nobody" and "unknown entity" in r["reason"]
               for r in refusals), refusals
    assert all(r["entity"] == "client.nobody" for r in refusals), refusals


@pytest.mark.timeout(180)
def test_kill_active_fails_over_and_the_load_continues(cluster: Cluster) -> None:
    old = cluster.wait("rank 0 active", cluster.active, 30)
    cluster.wait("the client load to make progress", lambda: cluster.ok_ops() > 20, 30,
                 services=("client",))
    cluster.compose("kill", service_of(old["name"]))
    try:
        new = cluster.wait(f"a standby to replace mds.{old['name']} as rank 0",
                           lambda: cluster.active(not_name=old["name"]), FAILOVER_TIMEOUT)
        assert new["gid"] != old["gid"]
        assert f"Replacing daemon mds.{old['name']} as rank 0" in cluster.logs("watch")
        # the load goes on against the new active: acknowledged operations keep coming
        after = cluster.ok_ops()

        def going_on() -> bool:
            log = cluster.logs("client")
            if "was evicted" in log:
                pytest.fail("the load's clients were evicted by the new active: they did not "
                            "reconnect within mds_reconnect_timeout\n" + log[-3000:])
            return cluster.ok_ops() >= after + 20

        cluster.wait("the client load to go on after the failover", going_on, 30,
                     services=("client", "watch", service_of(new["name"])))
    finally:  # the later scenarios want three daemons again, whatever happened here
        cluster.compose("start", service_of(old["name"]), check=False)
    # the killed daemon comes back as a standby (same name, new gid)
    cluster.wait(f"mds.{old['name']} to stand by again",
                 lambda: cluster.standby(old["name"], not_gid=old["gid"]), 60)


@pytest.mark.timeout(180)
def test_restart_mon_keeps_the_map(cluster: Cluster) -> None:
    before = cluster.wait("the fsmap", cluster.fsmap, 30)
    fs_before = before["filesystems"][0]["mdsmap"]
    holder = cluster.rank0(before)
    cluster.compose("restart", "mon", timeout=120)
    after = cluster.wait("the restarted monitor to answer", cluster.fsmap, 60,
                         services=("mon",))
    assert after["epoch"] >= before["epoch"], (before["epoch"], after["epoch"])
    fs_after = after["filesystems"][0]["mdsmap"]
    assert (fs_after["fs_name"], fs_after["created"]) == (fs_before["fs_name"],
                                                          fs_before["created"])
    assert "mon store loaded" in cluster.logs("mon")
    cluster.wait("HEALTH_OK with rank 0 active after the mon restart", cluster.healthy, 60,
                 services=("mon", "watch"))
    # the daemons kept their gids through the restart (T1/T2: a fresh grace for each of
    # them), so rank 0 is still where it was
    assert cluster.rank0(cluster.fsmap())["gid"] == holder["gid"]


@pytest.mark.timeout(300)
def test_down_then_up_keeps_the_map_and_the_keys(cluster: Cluster) -> None:
    """`docker compose down` without -v, then `up -d`: new containers on the same volumes;
    the keys are not made again, the monitor still knows them, the cluster comes back. An
    entity deleted from the monitor meanwhile (`auth del`) is imported again by `setup`."""
    keys = key_files(cluster)
    created = cluster.wait("the fsmap", cluster.fsmap, 30)["filesystems"][0]["mdsmap"][
        "created"]
    load_key = cluster.mdsemu("auth", "print-key", "client.load").stdout.strip()
    assert load_key.startswith("AQ")
    cluster.compose("down", "-t", "10", timeout=180)
    cluster.compose("up", "-d", "--no-build", "mon", timeout=180)
    p = docker_cmd("exec", cluster.container("mon"), "mdsemu", "--connect-timeout", "30",
                   "auth", "del", "client.load", check=False, timeout=60)
    assert p.returncode == 0, p.stderr
    cluster.compose("up", "-d", "--no-build", timeout=300)
    cluster.wait("HEALTH_OK, rank 0 active and three MDS daemons after down and up",
                 cluster.healthy, UP_TIMEOUT, services=("setup", "watch", "mon"))
    assert cluster.fsmap()["filesystems"][0]["mdsmap"]["created"] == created
    assert key_files(cluster) == keys
    mon_log = cluster.logs("mon")
    assert "wrote key files" not in mon_log and "refusing connection" not in mon_log
    imported = [json.loads(line) for line in cluster.logs("setup").splitlines()
                if "imported a key" in line]
    assert [r["name"] for r in imported] == ["client.load"], imported
    assert cluster.mdsemu("auth", "print-key", "client.load").stdout.strip() == load_key
    cluster.wait("the client load to make progress", lambda: cluster.ok_ops() > 20, 60,
                 services=("client",))


@pytest.mark.timeout(180)
def test_stop_standby_is_a_clean_shutdown(cluster: Cluster) -> None:
    m = cluster.wait("the fsmap", cluster.fsmap, 30)
    standbys = sorted(s["name"] for s in m["standbys"])
    assert standbys, "no standby to stop"
    name = "b" if "b" in standbys else standbys[0]
    service = service_of(name)
    seen = len(cluster.logs("watch"))
    t0 = time.monotonic()
    cluster.compose("stop", "-t", "10", service)
    try:
        stopped_in = time.monotonic() - t0
        # removed from the map by the time `stop` returns: no beacon grace to wait for
        m = cluster.fsmap()
        assert m is not None and name not in cluster.daemons(m), m
        state = cluster.inspect(service)["State"]
        assert state["ExitCode"] == 0, state
        assert stopped_in < 8, f"docker stop took {stopped_in:.1f}s: SIGTERM was not handled?"
        log = cluster.logs(service)
        assert '"signal": "SIGTERM"' in log and "shutting down on signal" in log, log[-2000:]
        assert "mon acknowledged our shutdown" in log, log[-2000:]
        clog = cluster.logs("watch")[seen:]  # the cluster log since the stop
        assert "is shutting down" not in clog, clog  # Ceph logs nothing for down:dne (M7)
        assert f"daemon mds.{name} is removed because it is dead" not in clog, clog
    finally:
        cluster.compose("start", service, check=False)
    cluster.wait(f"mds.{name} to stand by again", lambda: cluster.standby(name), 60)


@pytest.mark.timeout(240)
def test_network_cut_of_the_active_then_it_respawns_as_standby(cluster: Cluster) -> None:
    old = cluster.wait("rank 0 active", cluster.active, 30)
    service = service_of(old["name"])
    before = cluster.inspect(service)
    ((network, endpoint),) = before["NetworkSettings"]["Networks"].items()
    docker_cmd("network", "disconnect", network, before["Id"])
    try:
        new = cluster.wait(f"a standby to replace the cut-off mds.{old['name']}",
                           lambda: cluster.active(not_name=old["name"]), FAILOVER_TIMEOUT)
        assert new["gid"] != old["gid"]
        clog = cluster.logs("watch")
        assert f"Replacing daemon mds.{old['name']} as rank 0" in clog
        assert "laggy" in clog or "unavailable" in clog, clog[-3000:]
    finally:
        docker_cmd("network", "connect", "--alias", service, network, before["Id"])
    address = cluster.inspect(service)["NetworkSettings"]["Networks"][network]["IPAddress"]
    respawned = cluster.wait(
        f"mds.{old['name']} to respawn as a standby (new gid); its address was "
        f"{endpoint['IPAddress']} before the cut and {address} after",
        lambda: cluster.standby(old["name"], not_gid=old["gid"]), 60,
        services=(service, "watch"))
    assert respawned["gid"] != old["gid"]
    after = cluster.inspect(service)
    # the same process re-executed itself (B8): the container was not restarted
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]
    assert after["RestartCount"] == before["RestartCount"]
    assert "respawn" in cluster.logs(service)
    cluster.wait("HEALTH_OK after the network cut", cluster.healthy, 60)


def _grace(cluster: Cluster) -> str:
    return docker_cmd("exec", cluster.container("watch"), "mdsemu-grace", "-p",
                      "cephfs_metadata", "-n", "ganesha", check=False).stdout


def _settled(cluster: Cluster) -> str | None:
    """The grace database once no grace period is in force and no head has a flag."""
    out = _grace(cluster)
    lines = out.splitlines()
    if len(lines) == 4 and lines[0].endswith(" rec=0") and \
            [ln.split("\t")[0] for ln in lines[2:]] == ["a", "b"] and \
            all(ln.endswith("\t  ") for ln in lines[2:]):
        return out
    return None


@pytest.mark.timeout(180)
def test_nfs_heads_register_and_recover_a_kill(cluster: Cluster) -> None:
    """nfs-a and nfs-b (issue 11 item 7): members of the grace database, shown by `nfs
    cluster info` with their host names and addresses; a kill -9 and start of nfs-a runs a
    grace period that lifts again."""
    def info():
        p = cluster.mdsemu("nfs", "cluster", "info", "ganesha")
        try:
            backends = json.loads(p.stdout)["ganesha"]["backend"]
        except (ValueError, KeyError):
            return None
        return backends if [b["hostname"] for b in backends] == ["nfs-a", "nfs-b"] else None

    backends = cluster.wait("nfs-a and nfs-b in nfs cluster info", info, 90,
                            services=("nfs-a", "nfs-b"))
    for b, service in zip(backends, ("nfs-a", "nfs-b"), strict=True):
        nets = cluster.inspect(service)["NetworkSettings"]["Networks"]
        assert b["port"] == 2049 and b["ip"] in {n["IPAddress"] for n in nets.values()}, b
    before = cluster.wait("the heads to settle", lambda: _settled(cluster), 60,
                          services=("nfs-a", "nfs-b"))
    cluster.compose("kill", "nfs-a")
    cluster.compose("start", "nfs-a")
    cluster.wait("a grace period after nfs-a's restart, then its lift", lambda: (
        (s := _settled(cluster)) and s.splitlines()[0] != before.splitlines()[0]), 90,
        services=("nfs-a", "nfs-b"))


THRASH_KINDS = "kill=1,stop_long=1,disconnect=1,restart=1,mon_restart=1,osd_pause=1"


@pytest.mark.timeout(300)
def test_thrash_compose_applies_a_seeded_schedule_to_the_containers(cluster: Cluster,
                                                                    tmp_path) -> None:
    """`mdsemu thrash --compose PROJECT` (issue 13): seed 4's 8 faults, of six kinds (docker
    kill, stop, pause, network disconnect of an active; the mon killed; the osd paused), are
    applied to the project's containers and healed; the cluster is HEALTH_OK again, the client
    service's history verifies (exit 0), and the report has every fault and the timeline."""
    from client import nemesis

    report = tmp_path / "report"
    p = subprocess.run(
        [sys.executable, "-m", "client", "thrash", "--compose", cluster.project, "--seed", "4",
         "--faults", "8", "--delay", "2", "--max-revive-delay", "2", "--thrash-max-mds", "0",
         "--thrash-weights", THRASH_KINDS, "--report", str(report),
         "--recovery-timeout", "60"],
        capture_output=True, text=True, timeout=280, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    expected = nemesis.schedule(nemesis.Options(
        seed=4, faults=8, delay=2, max_revive_delay=2, thrash_max_mds=0, grace=1.0, ranks=2,
        compose=True, weights=nemesis.parse_weights(THRASH_KINDS, compose=True)))
    assert p.stdout.splitlines()[1:9] == [f.line() for f in expected]
    doc = json.loads((report / "report.json").read_text())
    assert doc["exit_status"] == 0 and doc["verify"]["violations"] == []
    assert {f["kind"] for f in doc["faults"]} == {k.split("=")[0]
                                                  for k in THRASH_KINDS.split(",")}
    assert all(f["target"] and f["recovered_after"] is not None for f in doc["faults"])
    assert "<title>fault 7: " in (report / "timeline.html").read_text()
    cluster.wait("HEALTH_OK after the thrash", cluster.healthy, 60)
    assert not cluster.inspect("mds-a")["State"]["Paused"]
    # the thrasher started the client service again: its new history grows
    cluster.wait("the client load to go on", lambda: cluster.ok_ops() > 150, 60)


@pytest.mark.timeout(180)
def test_verify_finds_no_lost_acknowledged_operation(cluster: Cluster) -> None:
    cluster.compose("stop", "-t", "10", "client")
    p = cluster.compose("run", "--rm", "--no-deps", "-T", "client", "mdsemu", "client",
                        "verify", "--history", HISTORY, "-f", "json", timeout=120, check=False)
    assert p.returncode == 0, f"verify failed ({p.returncode}):\n{p.stdout[-3000:]}\n" \
                              f"{p.stderr[-3000:]}"
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert summary["violations"] == [], summary
    assert summary["acknowledged"] > 100, summary


@pytest.mark.timeout(180)
def test_down_leaves_nothing_behind(cluster: Cluster) -> None:
    cluster.compose("down", "-v", "--remove-orphans", "-t", "10", timeout=180)
    assert project_leftovers(cluster.project) == []


"""The sans-IO cephx core (common/cephx.py), keyrings (common/keyring.py) and caps
(common/caps.py): plain bytes and numbers, no sockets."""

import errno
import os
import stat

import pytest

from common import caps, cephx, keyring
from common.caps import MDSCaps, MonCaps, OSDCaps
from common.cephx import AuthError


# -- keyrings
def test_keyring_round_trips_in_cephs_format_and_is_written_0600(tmp_path):
    key = keyring.new_key()
    assert key.startswith("AQ") and len(keyring.secret_of(key)) == 16
    entries = {"client.admin": keyring.Entry(key, {"mon": "allow *", "mds": "allow *"})}
    path = tmp_path / "ceph.client.admin.keyring"
    keyring.write(str(path), entries)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_text()
    assert text == f'[client.admin]\n\tkey = {key}\n\tcaps mds = "allow *"\n' \
                   f'\tcaps mon = "allow *"\n'
    assert keyring.parse(text) == entries
    assert keyring.secret_for(str(path), "client.admin") == keyring.secret_of(key)
    assert keyring.secret_for(str(path), "client.bob") is None


def test_keyring_rejects_a_key_that_is_not_a_ceph_key():
    with pytest.raises(keyring.KeyringError):
        keyring.parse("[client.x]\nkey = AQBsecretsecretsecret==\n")
    with pytest.raises(keyring.KeyringError):
        keyring.parse("key = x\n")


# -- caps
def test_mon_caps_read_only_client_reads_but_cannot_set():
    ro = MonCaps.parse("allow r")
    assert ro.allows_command(["fs", "dump"]) and ro.allows_command(["health"])
    assert not ro.allows_command(["fs", "set", "cephfs", "max_mds", "2"])
    assert not ro.allows_command(["auth", "ls"])  # auth needs x as well
    assert MonCaps.parse("allow *").allows_command(["auth", "get-or-create", "client.x"])
    assert not MonCaps().allows_command(["health"])  # no caps: nothing


def test_mon_caps_allow_command_grants_just_that_command():
    c = MonCaps.parse('allow command "fs set", allow command "osd blocklist ls"')
    assert c.allows_command(["fs", "set", "a", "max_mds", "2"])
    assert c.allows_command(["osd", "blocklist", "ls"])
    assert not c.allows_command(["fs", "dump"])


def test_osd_caps_pool_and_namespace():
    c = OSDCaps.parse("allow rw pool=nfs namespace=grace, allow r pool=cephfs_data")
    assert c.allows("nfs", "grace", {"r", "w"})
    assert not c.allows("nfs", "other", {"r"})
    assert c.allows("cephfs_data", "", {"r"}) and not c.allows("cephfs_data", "", {"w"})
    assert not c.allows("cephfs_metadata", "", {"r"})
    assert OSDCaps.parse("profile mds").allows("anything", "x", {"r", "w"})
    assert OSDCaps.parse("allow rw pool foo").allows("foo", "", {"w"})


def test_mds_caps_path_restricts_and_read_only_cannot_write():
    c = MDSCaps.parse("allow rw path=/home/bob, allow r")
    assert c.allows("/home/bob/f", {"r", "w"}) and c.allows("/home/bob", {"w"})
    assert not c.allows("/home/bobby", {"w"}) and c.allows("/etc", {"r"})
    only = MDSCaps.parse("allow rw path=/dir")
    assert not only.may_mount("/") and only.may_mount("/dir")
    assert not only.allows("/other", {"r"})
    assert not MDSCaps.parse("allow r").allows("/x", {"w"})


@pytest.mark.parametrize("svc,text", [("mon", "allow q"), ("mon", "grant r"),
                                      ("osd", "allow rw path=/x"), ("mds", "allow rw pool=a"),
                                      ("mon", "")])
def test_bad_caps_are_refused(svc, text):
    with pytest.raises(caps.CapsError):
        caps.parse(svc, text)


# -- the monitor handshake
def _handshake(client_secret, mon_secret, entity="client.bob"):
    sc, cc = cephx.challenge(), cephx.challenge()
    p = cephx.client_proof(client_secret, entity, sc, cc)
    key, reply = cephx.mon_accept(mon_secret, entity, sc, cc, p)
    return key, cephx.client_finish(client_secret, entity, cc, reply), (sc, cc, p)


def test_mon_handshake_gives_both_sides_the_same_session_key():
    secret = cephx.new_key()
    mon_key, client_key, _ = _handshake(secret, secret)
    assert mon_key == client_key


def test_mon_handshake_wrong_key_is_refused():
    with pytest.raises(AuthError) as e:
        _handshake(cephx.new_key(), cephx.new_key())
    assert e.value.code == errno.EACCES


def test_replayed_handshake_fails_on_a_new_challenge():
    secret = cephx.new_key()
    _, _, (sc, cc, p) = _handshake(secret, secret)
    with pytest.raises(AuthError):
        cephx.mon_accept(secret, "client.bob", cephx.challenge(), cc, p)


def test_client_refuses_a_monitor_that_does_not_know_its_key():
    secret, impostor = cephx.new_key(), cephx.new_key()
    sc, cc = cephx.challenge(), cephx.challenge()
    _, reply = cephx.mon_accept(impostor, "client.bob", sc, cc,
                                cephx.client_proof(impostor, "client.bob", sc, cc))
    with pytest.raises(AuthError):
        cephx.client_finish(secret, "client.bob", cc, reply)


# -- tickets and authorizers
def _ticket(now=1000.0, ttl=60.0, caps_text="allow rw"):
    rot = cephx.RotatingSecrets()
    rot.rotate(now, ttl)
    session = cephx.new_key()
    d = cephx.issue_ticket("mds", rot, session, "client.bob", 4242, caps_text, now, ttl)
    return rot, cephx.open_ticket_reply(session, d, now)


def test_service_accepts_a_ticket_with_a_fresh_proof():
    rot, t = _ticket()
    sc = cephx.challenge()
    ident, sproof = cephx.service_accept("mds", rot, "client.bob", sc,
                                         cephx.authorizer(t, "client.bob", sc), 1010.0)
    assert (ident.entity, ident.gid, ident.caps, ident.key) == ("client.bob", 4242, "allow rw",
                                                                 t.key)
    cephx.client_check_service(t, sc, sproof)


def test_expired_ticket_is_refused_with_ekeyexpired():
    rot, t = _ticket(now=1000.0, ttl=60.0)
    sc = cephx.challenge()
    with pytest.raises(AuthError) as e:
        cephx.service_accept("mds", rot, "client.bob", sc, cephx.authorizer(t, "client.bob", sc),
                             1061.0)
    assert e.value.code == errno.EKEYEXPIRED
    assert t.needs_renewal(1046.0) and not t.needs_renewal(1030.0)


def test_authorizer_replayed_on_another_connection_or_by_another_entity_fails():
    rot, t = _ticket()
    old = cephx.authorizer(t, "client.bob", cephx.challenge())
    with pytest.raises(AuthError):
        cephx.service_accept("mds", rot, "client.bob", cephx.challenge(), old, 1001.0)
    sc = cephx.challenge()
    with pytest.raises(AuthError):
        cephx.service_accept("mds", rot, "client.eve", sc, cephx.authorizer(t, "client.eve", sc),
                             1001.0)


def test_forged_ticket_and_other_service_ticket_are_refused():
    rot, t = _ticket()
    sc = cephx.challenge()
    auth = cephx.authorizer(t, "client.bob", sc)
    forged = dict(auth, ticket=auth["ticket"][:-1] + bytes([auth["ticket"][-1] ^ 1]))
    with pytest.raises(AuthError):
        cephx.service_accept("mds", rot, "client.bob", sc, forged, 1001.0)
    with pytest.raises(AuthError):  # sealed for the mds, presented to the osd
        cephx.service_accept("osd", rot, "client.bob", sc, auth, 1001.0)


def test_rotation_hands_out_the_next_secret_early_and_keeps_the_previous():
    rot = cephx.RotatingSecrets()
    assert rot.rotate(0.0, 60.0)
    assert sorted(rot.secrets) == [1, 2] and rot.current()[0] == 1  # 2 is the next one
    assert not rot.rotate(30.0, 60.0)
    assert rot.rotate(60.0, 60.0) and rot.current()[0] == 2
    assert rot.get(1) is not None  # tickets sealed with it before the rotation still open
    rot.rotate(121.0, 60.0)
    assert rot.get(1) is None and sorted(rot.secrets) == [2, 3, 4]
    assert rot.rotate(1000.0, 60.0) and rot.secrets[rot.current()[0]][1] > 1000.0
    assert len(rot.secrets) == cephx.ROTATING_KEEP
    assert cephx.RotatingSecrets.from_wire(rot.to_wire()) == rot


# -- signatures
def test_signed_frames_verify_in_order_and_tampering_or_replay_fails():
    key = cephx.new_key()
    client, server = cephx.Signer(key, True), cephx.Signer(key, False)
    f1, f2 = client.sign(b"one"), client.sign(b"two")
    assert server.verify(f1) == b"one"
    with pytest.raises(AuthError):
        server.verify(f1)  # a replay
    server2 = cephx.Signer(key, False)
    server2.verify(f1)
    with pytest.raises(AuthError):
        server2.verify(b"twp" + f2[3:])  # tampered
    back = server.sign(b"reply")
    with pytest.raises(AuthError):
        cephx.Signer(key, False).verify(back)  # the other direction's frames do not pass
    assert client.verify(back) == b"reply"


def test_tickets_missing_are_asked_for_again_until_they_come():
    """A first request (or its reply) lost while the monitor session stays up (a
    blackholed or one-way partitioned daemon) is made again after `retry`, as a renewal is:
    otherwise the daemon never gets an osd ticket and cannot replay its rank."""
    ask = cephx.tickets_to_request
    assert ask({}, 1000.0, None, 5.0) == ["mds", "osd"]  # the session's first request
    assert ask({}, 1001.0, 1.0, 5.0) == []  # the reply may be on its way
    assert ask({}, 1005.0, 5.0, 5.0) == ["mds", "osd"]  # it did not come: ask again
    _, t = _ticket(now=1000.0, ttl=60.0)
    assert ask({"mds": t}, 1006.0, 6.0, 5.0) == ["osd"]
    osd = cephx.Ticket("osd", t.secret_id, t.blob, t.key, t.expires, t.ttl)
    assert ask({"mds": t, "osd": osd}, 1030.0, 30.0, 5.0) == []
    assert ask({"mds": t, "osd": osd}, 1046.0, 46.0, 5.0) == ["mds", "osd"]  # renewal
    assert cephx.tickets_due({"mds": t, "osd": osd}, 1046.0) == ["mds", "osd"]
    # a new monitor session asks for all of them (and the rotating secrets), held or not,
    # until it is answered
    assert ask({"mds": t, "osd": osd}, 1030.0, None, 5.0, answered=False) == ["mds", "osd"]
    assert ask({"mds": t, "osd": osd}, 1031.0, 1.0, 5.0, answered=False) == []
    assert ask({"mds": t, "osd": osd}, 1035.0, 5.0, 5.0, answered=False) == ["mds", "osd"]

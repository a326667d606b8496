"""Unit tests for common.config."""

import os
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.config import (
    OPTIONS,
    PROFILES,
    ConfError,
    ConfFile,
    Config,
    canonical,
    load_conf,
    parse_conf_text,
    parse_value,
    resolve_for,
)

SEED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "ref", "seeds",
                    "001_d8b0c9fee6fc7b5b.txt")

# The ceph.conf snippets of seed 001, verbatim.
SIMPLE_PAIR = """\
[mds.a]
mds standby replay = true
mds standby for rank = 0

[mds.b]
mds standby replay = true
mds standby for rank = 0
"""
FLOATING_STANDBY = """\
# No explicit configuration required: whichever daemon is
# not assigned a rank will go into 'standby' and take over
# for whichever other daemon fails.
"""
TWO_CLUSTERS = """\
[mds.a]
mds standby for fscid = 1

[mds.b]
mds standby for fscid = 1

[mds.c]
mds standby for fscid = 2

[mds.d]
mds standby for fscid = 2
"""
SNIPPETS = [SIMPLE_PAIR, FLOATING_STANDBY, TWO_CLUSTERS]


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_seed_snippets_are_verbatim(snippet):
    if not os.path.exists(SEED):
        pytest.skip("seed file not available")
    with open(SEED, encoding="utf-8") as f:
        assert snippet.strip() in f.read()


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_seed_snippets_load(snippet):
    conf = parse_conf_text(snippet, "seed.conf")
    for name in ["mds.a", "mds.b", "mds.c", "mds.d", "mon.a", "client.admin"]:
        Config(name, conf).dump()


def test_seed_simple_pair():
    conf = parse_conf_text(SIMPLE_PAIR)
    for name in ("mds.a", "mds.b"):
        cfg = Config(name, conf)
        assert cfg.get("mds_standby_replay") is True
        assert cfg.get("mds_standby_for_rank") == 0
        assert cfg.source("mds standby replay") == "file"
    other = Config("mds.c", conf)
    assert other.get("mds_standby_replay") is False
    assert other.get("mds_standby_for_rank") == -1


def test_seed_floating_standby_has_no_sections():
    assert parse_conf_text(FLOATING_STANDBY).sections == {}


def test_seed_two_clusters():
    conf = parse_conf_text(TWO_CLUSTERS)
    assert Config("mds.c", conf).get("mds_standby_for_fscid") == 2
    assert Config("mds.a", conf).get("mds_standby_for_fscid") == 1
    assert Config("mds.e", conf).get("mds_standby_for_fscid") == -1


@pytest.mark.parametrize("line", ["mds standby replay = true", "mds_standby_replay=true",
                                  "mds-standby-replay = yes", "\tMDS_Standby  Replay = ON"])
def test_spellings_are_the_same_option(line):
    conf = parse_conf_text(f"[mds]\n{line}\n")
    assert list(conf.sections["mds"]) == ["mds_standby_replay"]
    assert Config("mds.x", conf)["mds-standby-replay"] is True


def test_canonical_examples():
    for name in ("mds standby replay", "mds-standby-replay", "MDS_Standby_Replay",
                 "  mds  standby__-replay "):
        assert canonical(name) == "mds_standby_replay"


@given(st.text())
def test_canonical_is_idempotent(name):
    assert canonical(canonical(name)) == canonical(name)


def test_options_and_profiles_are_consistent():
    for name, opt in OPTIONS.items():
        assert name == canonical(name) == opt.name
        assert isinstance(opt.default, opt.type) and opt.help
        assert parse_value(name, opt.default) == opt.default
    for values in PROFILES.values():
        for name, value in values.items():
            assert parse_value(name, value) == value
    assert OPTIONS["mds_beacon_grace"].default == 15
    assert PROFILES["ceph"] == {}


def test_parse_value_conversions():
    for raw in ("true", "YES", "on", "1", True, 1):
        assert parse_value("mds_standby_replay", raw) is True
    for raw in ("false", "No", "OFF", "0", False, 0):
        assert parse_value("mds standby replay", raw) is False
    assert parse_value("mds_beacon_grace", 3) == 3.0
    assert isinstance(parse_value("mds_beacon_grace", "3"), float)
    assert parse_value("mds_standby_for_rank", " -1 ") == -1
    assert parse_value("log_format", "JSON") == "json"
    assert parse_value("mon_host", " 10.0.0.1:6789 ") == "10.0.0.1:6789"


@pytest.mark.parametrize(("name", "raw", "message"), [
    ("mds_beacon_grace", "abc", "mds_beacon_grace: expected a number, got 'abc'"),
    ("mds_beacon_grace", True, "mds_beacon_grace: expected a number, got True"),
    ("mds_beacon_grace", "nan", "mds_beacon_grace: expected a number, got 'nan'"),
    ("mds_log_max_segments", "1.5", "mds_log_max_segments: expected an integer, got '1.5'"),
    ("mds_log_max_segments", 4, "mds_log_max_segments: 4 is below the minimum 8"),
    ("mds_standby_replay", "maybe", "mds_standby_replay: expected a boolean"),
    ("log_level", "loud", "log_level: expected one of"),
    ("mon_host", 5, "mon_host: expected a string, got 5"),
])
def test_parse_value_errors(name, raw, message):
    with pytest.raises(ValueError) as info:
        parse_value(name, raw)
    assert str(info.value).startswith(message)


def test_unknown_option():
    with pytest.raises(KeyError, match="unknown option 'nope'"):
        parse_value("nope", "1")
    with pytest.raises(KeyError, match="unknown option"):
        Config("mds.a").get("nope")
    with pytest.raises(KeyError):
        Config("mds.a").set_override("nope", 1)


def test_precedence_of_all_layers():
    opt = "mds_beacon_grace"
    conf = parse_conf_text("[global]\nmds beacon interval = 3\n")
    cfg = Config("mds.a")
    assert (cfg.get(opt), cfg.source(opt)) == (15.0, "default")
    cfg = Config("mds.a", profile="fast")
    assert (cfg.get(opt), cfg.source(opt)) == (1.0, "profile")
    conf = parse_conf_text("[mds]\nmds beacon grace = 7\n")
    cfg = Config("mds.a", conf, profile="fast")
    assert (cfg.get(opt), cfg.source(opt)) == (7.0, "file")
    assert cfg.set_runtime({opt: "9"}) == [opt]
    assert (cfg.get(opt), cfg.source(opt)) == (9.0, "mon")
    cfg.set_override("mds-beacon-grace", "11")
    assert (cfg.get(opt), cfg.source(opt)) == (11.0, "override")
    assert cfg.set_runtime({}) == []  # hidden under the override
    cfg = Config("mds.a", conf, overrides={opt: 12}, profile="fast")
    assert (cfg.get(opt), cfg.source(opt)) == (12.0, "override")
    assert cfg.get("mds_tick_interval") == 0.25  # other profile values still apply


def test_profile_from_conf_and_constructor_wins():
    conf = parse_conf_text("[mds.a]\nmdsemu profile = fast\n")
    assert Config("mds.a", conf).get("mds_beacon_interval") == 0.25
    assert Config("mds.a", conf).profile == "fast"
    assert Config("mds.b", conf).get("mds_beacon_interval") == 4.0
    assert Config("mds.a", conf, profile="ceph").get("mds_beacon_interval") == 4.0
    with pytest.raises(ValueError, match="unknown profile"):
        Config("mds.a", profile="slow")


def test_section_specificity():
    conf = parse_conf_text("""
[mds.a]
mds join fs = a-fs
[global]
mds join fs = global-fs
mds beacon grace = 20
[mds]
mds join fs = mds-fs
[client]
keyring = /etc/client.keyring
[client.admin]
keyring = /etc/admin.keyring
""")
    assert Config("mds.a", conf).get("mds_join_fs") == "a-fs"
    assert Config("mds.b", conf).get("mds_join_fs") == "mds-fs"
    assert Config("mon.a", conf).get("mds_join_fs") == "global-fs"
    assert Config("mds.a", conf).get("mds_beacon_grace") == 20.0
    admin = Config("client.admin", conf)
    assert (admin.entity_type, admin.entity_id, admin.name) == ("client", "admin", "client.admin")
    assert admin.get("keyring") == "/etc/admin.keyring"
    assert admin.get("mds_join_fs") == "global-fs"
    assert Config("client.bob", conf).get("keyring") == "/etc/client.keyring"


def test_metavariable_expansion():
    assert Config("mon.a").get("mon_data") == "/var/lib/mdsemu/mon/ceph-a"
    assert Config("osd.3", cluster="test").get("osd_data") == "/var/lib/mdsemu/osd/test-3"
    conf = parse_conf_text("[global]\nlog file = /log/$cluster/$name-${id}.$type.log\n"
                           "keyring = /k/$host/$idx\n")
    cfg = Config("mds.b", conf)
    assert cfg.get("log_file") == "/log/ceph/mds.b-b.mds.log"
    assert cfg.get("keyring") == f"/k/{socket.gethostname()}/$idx"
    cfg.set_override("mon_data", "/d/$id")
    assert cfg.get("mon_data") == "/d/b"


def test_parser_syntax():
    conf = parse_conf_text("""\
; leading comment
# another
  [ global ]   # trailing comment
\tmon host = 10.0.0.1:6789 # inline comment
fsid="abc # not a comment"
keyring = a#b;c
log file = /var/log/\\
  mdsemu.log
empty =
# a comment does not continue \\
[mds.a]
mds join fs = x
[global]
public addr = 1.2.3.4 ; comment
""", "ceph.conf")
    assert conf.path == "ceph.conf"
    glob = conf.sections["global"]
    assert glob["mon_host"] == ("10.0.0.1:6789", 4)
    assert glob["fsid"] == ("abc # not a comment", 5)
    assert glob["keyring"] == ("a#b;c", 6)
    assert glob["log_file"] == ("/var/log/  mdsemu.log", 7)
    assert glob["empty"] == ("", 9)
    assert glob["public_addr"] == ("1.2.3.4", 14)
    assert conf.sections["mds.a"] == {"mds_join_fs": ("x", 12)}


def test_unknown_options_kept_but_ignored():
    conf = parse_conf_text("[global]\nosd pool default size = lots\n")
    assert conf.sections["global"]["osd_pool_default_size"] == ("lots", 2)
    assert Config("mds.a", conf).dump() == Config("mds.a").dump()


@pytest.mark.parametrize(("text", "message"), [
    ("[global]\n[mds.a\nx = 1\n", "ceph.conf:2: unclosed section header '[mds.a'"),
    ("[global]\nmon host\n", "ceph.conf:2: expected 'key = value'"),
    ("# c\nmon host = x\n", "ceph.conf:2: option outside of any section"),
    ("[ ]\n", "ceph.conf:1: empty section name"),
    ("[global]\n = 1\n", "ceph.conf:2: empty option name"),
    ("[global]\nfsid = \"abc\n", "ceph.conf:2: unterminated quoted value"),
    ("[global] x\n", "ceph.conf:1: unexpected text after section header"),
])
def test_syntax_errors_name_file_and_line(text, message):
    with pytest.raises(ConfError) as info:
        parse_conf_text(text, "ceph.conf")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("line", "message"), [
    ("mds standby replay = maybe", "mds_standby_replay: expected a boolean"),
    ("mds beacon grace = soon", "mds_beacon_grace: expected a number, got 'soon'"),
    ("mds log max segments = 2", "mds_log_max_segments: 2 is below the minimum 8"),
])
def test_value_errors_name_file_and_line(line, message):
    conf = parse_conf_text(f"[global]\n\n[mds]\n{line}\n", "ceph.conf")
    with pytest.raises(ConfError) as info:
        Config("mds.a", conf)
    assert str(info.value).startswith(f"ceph.conf:4: {message}")
    Config("mon.a", conf)  # the [mds] section does not apply to mon.a


def test_load_conf(tmp_path):
    path = tmp_path / "ceph.conf"
    path.write_text(SIMPLE_PAIR)
    conf = load_conf(str(path))
    assert isinstance(conf, ConfFile) and conf.path == str(path)
    assert Config("mds.b", conf).get("mds_standby_replay") is True
    missing = str(tmp_path / "missing.conf")
    with pytest.raises(ConfError, match=r"missing\.conf: cannot read: No such file"):
        load_conf(missing)
    path.write_text("[mds]\nmds beacon grace = x\n")
    with pytest.raises(ConfError, match=r"ceph\.conf:2: mds_beacon_grace"):
        Config("mds.a", load_conf(str(path)))


def test_resolve_for():
    db = {
        "global": {"mds_beacon_grace": "20", "log_level": "info"},
        "mds": {"mds beacon grace": "30", "mds_join_fs": "a"},
        "mds.b": {"mds_beacon_grace": "40"},
        "mon": {"log_level": "debug"},
    }
    assert resolve_for(db, "mds.b") == {"mds_beacon_grace": "40", "log_level": "info",
                                        "mds_join_fs": "a"}
    assert resolve_for(db, "mds.a") == {"mds_beacon_grace": "30", "log_level": "info",
                                        "mds_join_fs": "a"}
    assert resolve_for(db, "mon.a") == {"mds_beacon_grace": "20", "log_level": "debug"}
    assert resolve_for({}, "client.admin") == {}


def test_set_runtime_reports_changes_and_errors():
    cfg = Config("mds.a")
    changed = cfg.set_runtime({"mds_beacon_grace": "30", "mds_beacon_interval": "4",
                               "mds standby replay": "yes", "unknown_thing": "1",
                               "mds_tick_interval": "never"})
    assert changed == ["mds_beacon_grace", "mds_standby_replay"]
    assert cfg.source("mds_beacon_interval") == "mon"
    assert cfg.runtime_errors == ["mds_tick_interval: expected a number, got 'never'"]
    assert cfg.get("mds_tick_interval") == 5.0
    # The layer is replaced as a whole: dropped values revert.
    assert cfg.set_runtime({"mds_beacon_grace": "30"}) == ["mds_standby_replay"]
    assert cfg.runtime_errors == []
    assert cfg.set_runtime({}) == ["mds_beacon_grace"]
    assert cfg.source("mds_beacon_grace") == "default"


def test_dump_covers_every_option():
    dump = Config("mds.a", profile="fast").dump()
    assert set(dump) == set(OPTIONS)
    assert dump["mds_beacon_interval"] == 0.25
    assert dump["mon_data"] == "/var/lib/mdsemu/mon/ceph-a"

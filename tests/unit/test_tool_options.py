"""The tools' one option walker (client.conf.take_options) as `mdsemu` and `mdsemu rados`
use it: options anywhere on the line, `--opt=value`, and each tool's own errors."""

from __future__ import annotations

import pytest

from client import rados_cli
from client.conf import split_global_options


def test_mdsemu_global_options_anywhere_on_the_line():
    opts, words = split_global_options(["fs", "-c", "x.conf", "dump", "--format=json", "-s"])
    assert opts == {"conf": "x.conf", "format": "json", "timeout": None, "name": None,
                    "id": None, "keyring": None}
    assert words == ["fs", "dump", "status"]
    assert split_global_options(["--connect-timeout", "3", "-w"]) == (
        {"conf": None, "format": "plain", "timeout": "3", "name": None, "id": None,
         "keyring": None}, ["-w"])
    assert split_global_options(["-h"])[1] == ["--help"]
    assert split_global_options(["fs", "-h"])[1] == ["fs", "-h"]  # a command's own help
    with pytest.raises(SystemExit, match="option -c needs a value"):
        split_global_options(["status", "-c"])


def test_rados_options_and_its_errors():
    opts, args = rados_cli.parse(["-p", "meta", "put", "--namespace=ganesha", "obj", "-", "--all"])
    assert opts == {"conf": None, "pool": "meta", "ns": "ganesha", "all": True}
    assert args == ["put", "obj", "-"]
    with pytest.raises(rados_cli.Usage, match="Option -p requires an argument."):
        rados_cli.parse(["ls", "-p"])
    with pytest.raises(rados_cli.Usage, match="unrecognized option --frob"):
        rados_cli.parse(["ls", "--frob"])


def test_mdsemu_identity_options_as_ceph_takes_them():
    """-n/--name, --id, -k/--keyring (who to authenticate as with cephx)."""
    from client.conf import entity_name

    opts, words = split_global_options(["-n", "client.ro", "fs", "dump", "-k", "/k"])
    assert (entity_name(opts), opts["keyring"], words) == ("client.ro", "/k", ["fs", "dump"])
    opts, _ = split_global_options(["--id", "bob", "health"])
    assert entity_name(opts) == "client.bob"
    assert entity_name(split_global_options(["health"])[0]) == "client.admin"
    _, words = split_global_options(["setfattr", "-n", "x"], identity=False)
    assert words == ["setfattr", "-n", "x"]

"""The `mdsemu client` command line: parsing and output, without a cluster (the command
against a cluster is in tests/inprocess/test_fsclient.py)."""

from __future__ import annotations

import errno
import stat

import pytest

from client import fscli


def _args(*argv: str):
    return fscli.parse_args(list(argv))


def test_cli_parsing():
    a = _args("-c", "x.conf", "mkdir", "-p", "/a/b", "/c", "-f", "json")
    assert (a.op, a.parents, a.paths, a.conf, a.format) == ("mkdir", True, ["/a/b", "/c"],
                                                            "x.conf", "json")
    assert (a.fs, a.timeout, a.connect_timeout) == (None, 60.0, 5.0)
    a = _args("--fs", "cephfs", "setfattr", "-n", "user.k", "-v", "v", "/f", "--timeout", "3")
    assert (a.op, a.name, a.value, a.paths, a.fs, a.timeout) == (
        "setfattr", "user.k", "v", ["/f"], "cephfs", 3.0)
    assert _args("ls").paths == ["/"]
    a = _args("mv", "/a", "/b")
    assert (a.src, a.dst) == ("/a", "/b")
    for bad in (["mv", "/a"], ["frob", "/a"], ["-f", "xml", "ls"], ["setfattr", "/f"], []):
        with pytest.raises(fscli.UsageError):
            _args(*bad)


def test_cli_formatting():
    assert fscli.error_line("mkdir /a", errno.EEXIST) == "mdsemu client: mkdir /a: File exists"
    inode = {"ino": 7, "mode": stat.S_IFREG | 0o644, "uid": 1, "gid": 2, "size": 0,
             "mtime": 0.0, "ctime": 0.0, "nlink": 1, "xattrs": {"user.a": "b"}}
    text = fscli.stat_plain("/f", inode)
    assert "  File: /f" in text and "regular empty file" in text
    assert "Access: (0644/-rw-r--r--)" in text and "Xattrs: user.a=b" in text

"""cephx, as far as mdsemu goes: one shared cluster key from a Ceph-style keyring file, sent in
`hello` and checked by the monitor when `auth_cluster_required = cephx`."""

from __future__ import annotations

from common.config import Config


def read_keyring_key(path: str) -> str:
    """The first `key = ...` in a keyring file ("" if there is none or it cannot be read)."""
    try:
        with open(path) as f:
            for line in f:
                k, sep, v = line.partition("=")
                if sep and k.strip() == "key":
                    return v.strip()
    except OSError:
        return ""
    return ""


def hello_key(config: Config) -> str:
    """What this process sends as `auth` in its hello."""
    if config.get("auth_cluster_required") != "cephx":
        return ""
    return read_keyring_key(config.get("keyring"))

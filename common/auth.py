"""Which credentials a process authenticates with: with `auth_cluster_required = cephx`, its
entity's key from the keyring (common/keyring.py), as a cephx_net.CephxClient. Each call
gives a new one: its tickets are those of the monitor session it is used with (they name
that session's gid), so a daemon makes one and shares it between its monitor session and
the connections it opens and accepts; a tool makes one per monitor session."""

from __future__ import annotations

from common import keyring
from common.config import Config


class NoKeyring(Exception):
    """cephx is on and the keyring has no key for this entity (Ceph: "unable to find a
    keyring on ...")."""


def cephx_on(config: Config) -> bool:
    return config.get("auth_cluster_required") == "cephx"


def hello_key(config: Config, entity: str | None = None):
    """This process's credentials as `entity` (default: the config's name): a CephxClient, or
    None with cephx off. NoKeyring when cephx is on and there is no key."""
    if not cephx_on(config):
        return None
    from common.cephx_net import CephxClient  # trio: not for sans-IO importers of this module

    entity = entity or config.name
    path = config.get("keyring")
    secret = keyring.secret_for(path, entity) if path else None
    if secret is None:
        raise NoKeyring(f"unable to find a keyring for {entity} on {path or '(none)'}: "
                        f"cephx is required (auth_cluster_required = cephx)")
    return CephxClient(entity, secret, config.get("cephx_sign_messages"))

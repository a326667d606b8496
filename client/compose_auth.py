"""cephx for compose.yaml (issue 15): one keyring file per entity on the shared volume `keys`
(/etc/ceph/keys/ceph.<entity>.keyring), made the way cephadm bootstraps a cluster: before the
monitor's first start, its keyring (every entity of the compose file, with its caps) is
written into its data directory and imported by the monitor on that start (Ceph's
`ceph-mon --mkfs --keyring`, mon/server.py); each daemon reads only its own file.

Keys are made only when missing. Once the monitor has an auth database, it is the truth: each
start of the monitor's container writes the key files again from it (so `docker compose down`
without -v, a restart, or a `keys` volume that was lost keep working), and an entity the
database lacks (an `auth del`, an entity a newer compose file adds) is imported back by the
`setup` service (`auth import -i`).

`reconcile` decides with plain values; `bootstrap` is the thin shell the entry point calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from common import keyring
from common.keyring import Entry

KEYS_DIR = "/etc/ceph/keys"  # the volume `keys`
# The conf's keyring option: each entity finds its own file ($name expands to mds.a, ...).
KEYRING_OPTION = f"{KEYS_DIR}/$cluster.$name.keyring"
# The monitor's: its mkfs keyring, in its data directory as Ceph keeps `mon.`'s.
MON_KEYRING_OPTION = "/var/lib/mdsemu/mon/$cluster-$id/keyring"
LOAD_USER = "client.load"  # the `client` service's continuous load


def key_path(entity: str, keys_dir: str = KEYS_DIR, cluster: str = "ceph") -> str:
    return os.path.join(keys_dir, f"{cluster}.{entity.rstrip('.')}.keyring")  # mon.: ceph.mon


def entities(fs: str = "cephfs", mds: str = "abc", osds: int = 1, nfs: str = "ab",
             nfs_pool: str = "cephfs_metadata") -> dict[str, dict[str, str]]:
    """Every entity of compose.yaml and the caps it is created with: the daemons' as Ceph's
    vstart.sh gives them, client.admin `allow *` (the tools, health checks, `setup` and
    `watch`), the NFS heads only their grace database's pool and namespace (as `ceph nfs
    cluster create` grants), and the load what `ceph fs authorize <fs> client.load / rw`
    would give it."""
    from mon.auth_monitor import ADMIN_CAPS, DAEMON_CAPS
    from nfs.vstart import nfs_caps

    out = {"mon.": dict(DAEMON_CAPS["mon"]), "client.admin": dict(ADMIN_CAPS)}
    out |= {f"osd.{i}": dict(DAEMON_CAPS["osd"]) for i in range(osds)}
    out |= {f"mds.{x}": dict(DAEMON_CAPS["mds"]) for x in mds}
    caps = nfs_caps(nfs_pool)
    out |= {f"client.nfs.{x}": dict(zip(caps[::2], caps[1::2], strict=True)) for x in nfs}
    out[LOAD_USER] = {"mon": "allow r", "mds": "allow rw", "osd": f"allow rw pool={fs}_data"}
    return out


def reconcile(wanted: dict[str, dict[str, str]], files: dict[str, Entry],
              db: dict[str, Entry] | None, new_key: Callable[[], str]) -> dict[str, Entry]:
    """The entry each wanted entity's key file must hold: the monitor's when its database has
    the entity (it decides once it exists), else the file's as it is, else a new key with
    the entity's caps."""
    out = {}
    for entity, caps in wanted.items():
        if db and entity in db:
            out[entity] = Entry(db[entity].key, dict(db[entity].caps))
        elif entity in files:
            out[entity] = files[entity]
        else:
            out[entity] = Entry(new_key(), dict(caps))
    return out


def missing_from(db_entities: set[str], files: dict[str, Entry]) -> list[str]:
    """The key files whose entity the monitor does not know (`setup` imports them)."""
    return sorted(e for e in files if e not in db_entities)


# -- the shell (docker/entrypoint.py, docker/setup_fs.py)
def read_files(wanted, keys_dir: str = KEYS_DIR) -> dict[str, Entry]:
    """The entry of every wanted entity whose key file is there and readable."""
    found = {}
    for entity in wanted:
        try:
            entry = keyring.load(key_path(entity, keys_dir)).get(entity)
        except (OSError, keyring.KeyringError):
            continue  # made again (or taken from the monitor's database)
        if entry is not None:
            found[entity] = entry
    return found


def read_db(mon_data: str) -> dict[str, Entry] | None:
    """The monitor's auth database, read from its store before it starts; None when it has
    none yet (a first start, or a cluster that ran with auth none)."""
    if not os.path.exists(os.path.join(mon_data, "store.db")):
        return None
    from mon.store import MonStore

    store = MonStore(mon_data)
    try:
        auth = store.get("auth")
    finally:
        store.close()
    return {e: Entry.from_wire(d) for e, d in auth.items()} if auth else None


def bootstrap(mon_data: str, mon_keyring: str, wanted: dict[str, dict[str, str]],
              keys_dir: str = KEYS_DIR) -> list[str]:
    """Before the monitor starts: the key files and the monitor's keyring as `reconcile`
    says. Returns the entities whose file was (re)written."""
    files = read_files(wanted, keys_dir)
    entries = reconcile(wanted, files, read_db(mon_data), keyring.new_key)
    os.makedirs(keys_dir, exist_ok=True)
    written = []
    for entity, entry in entries.items():
        if files.get(entity) != entry:
            keyring.write(key_path(entity, keys_dir), {entity: entry})
            written.append(entity)
    os.makedirs(os.path.dirname(mon_keyring), exist_ok=True)
    keyring.write(mon_keyring, entries)
    return written

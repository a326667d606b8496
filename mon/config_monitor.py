"""The config database, sans-IO (Ceph's ConfigMonitor): values by `who` (global, mon, mds,
mds.a, ...), resolved per entity with the more specific section winning. The monitor's own
values take effect at once; `MDSMonitor.config_set`/`config_rm` record the change in the
Effects of the open proposal, so the shell persists it and publishes it to subscribers."""

from __future__ import annotations

from common.config import Config, resolve_for


class ConfigMonitor:
    def __init__(self, config: Config, db: dict[str, dict[str, str]] | None = None) -> None:
        self.config = config  # this mon's own configuration
        self.db: dict[str, dict[str, str]] = db or {}

    def values_for(self, who: str) -> dict[str, str]:
        """What an entity (e.g. mds.a) gets from the database."""
        return resolve_for(self.db, who)

    def apply(self) -> None:
        """The database's values for this mon take effect at once."""
        self.config.set_runtime(self.values_for(self.config.name))

    def set(self, who: str, name: str, value: str) -> None:
        self.db.setdefault(who, {})[name] = value
        self.apply()

    def rm(self, who: str, name: str) -> bool:
        """True if there was a value to remove."""
        if self.db.get(who, {}).pop(name, None) is None:
            return False
        if not self.db[who]:
            del self.db[who]
        self.apply()
        return True

"""vrrp_script rise/fall counting as keepalived does it (vrrp_scheduler.c), with no I/O.

The counter `result` runs over 0..rise+fall−1 and the script is OK while result ≥ rise. It
starts at rise−1 (one success is enough; 0 with `init_fail`). While OK, failures count down
and `fall` of them in a row make it fail; a success jumps back to the top. While failed,
successes count up and `rise` of them in a row make it OK; a failure drops back to 0. Before
the first result the status is unknown (None): its weight counts neither way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScriptConfig:
    name: str
    script: str
    interval: float = 1.0
    timeout: float | None = None  # default: the interval
    weight: int = 0
    rise: int = 1
    fall: int = 1
    init_fail: bool = False


class ScriptTracker:
    def __init__(self, cfg: ScriptConfig) -> None:
        self.cfg = cfg
        self.result = 0 if cfg.init_fail else cfg.rise - 1
        self.ok: bool | None = False if cfg.init_fail else None
        self.last_rc: int | None = None

    @property
    def top(self) -> int:
        return self.cfg.rise + self.cfg.fall - 1

    def record(self, rc: int | None) -> tuple[bool | None, list[str]]:
        """One run finished with exit status `rc` (None: killed after `timeout`).

        Returns (new status if it changed else None, log lines)."""
        name = self.cfg.name
        logs: list[str] = []
        if rc != self.last_rc and rc is not None:
            logs.append(f"Script `{name}` now returning {rc}")
        self.last_rc = rc
        before = self.ok
        if rc == 0:
            if self.result < self.cfg.rise - 1:
                self.result += 1
            else:
                self.result = self.top
        else:
            if self.result > self.cfg.rise:
                self.result -= 1
            else:
                self.result = 0
        self.ok = self.result >= self.cfg.rise
        if rc != 0 and before is None:
            self.ok = False  # a failure before the first success fails at once
        if self.ok == before:
            return None, logs
        if self.ok:
            logs.append(f"VRRP_Script({name}) succeeded")
        elif rc is None:
            logs.append(f"VRRP_Script({name}) timed_out")
        else:
            logs.append(f"VRRP_Script({name}) failed (exited with status {rc})")
        return self.ok, logs

    def status(self) -> dict:
        state = {None: "INIT", True: "GOOD", False: "BAD"}[self.ok]
        return {"name": self.cfg.name, "script": self.cfg.script, "status": state,
                "result": self.result, "rise": self.cfg.rise, "fall": self.cfg.fall,
                "weight": self.cfg.weight, "last_exit": self.last_rc}

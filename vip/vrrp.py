"""One VRRP instance as keepalived runs it (keepalived/vrrp/vrrp.c, RFC 5798), with no I/O.

Rules of this module: no trio, no sockets, no clock. Time arrives as `now` (seconds, any
monotonic origin); the caller asks `deadline()` when to call `tick(now)` next. Every entry
point returns a list of effects for the shell to carry out, in order: send an advertisement,
take or release the virtual addresses, run the notify scripts, log a line.

Theory of operation (keepalived's, which follows RFC 5798 §6.4):
- An instance starts in BACKUP ("Entering BACKUP STATE (init)") and becomes MASTER when no
  usable advertisement arrives for Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time.
  Only `state MASTER` with priority 255 (the address owner) skips the wait.
- A MASTER advertises every `advert_int`. It yields to a higher priority, or to an equal
  priority from a higher address; a lower one makes it advertise at once ("forcing new
  election").
- A BACKUP resets its down timer on adverts of priority >= its own (or always with
  `nopreempt`, or during `preempt_delay`); it discards lower ones, so its timer runs out and it
  preempts. A priority-0 advert (a master that stops) shortens the timer to Skew_Time.
- Tracked scripts: weight 0 → FAULT while failed; ±weight moves the effective priority,
  clamped to 1..254, and never for the owner (255).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

INIT, BACKUP, MASTER, FAULT, STOP = "INIT", "BACKUP", "MASTER", "FAULT", "STOP"
# keepalived's numbers for them (vrrp.h), as its JSON dump shows `state`
STATE_CODES = {INIT: 0, BACKUP: 1, MASTER: 2, FAULT: 3, STOP: 98}

PRIO_OWNER = 255  # VRRP_PRIO_OWNER: the address owner
PRIO_DEFAULT = 100  # VRRP_PRIO_DFL
PRIO_STOP = 0  # VRRP_PRIO_STOP: "I am stopping, take over now"
DOWN_TIMER_ADVERTS = 3  # VRRP_DOWN_TIMER_ADVERTS, rfc5798 §6.1


# -- events in ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Advert:
    """A received advertisement: its sender's address, VRID, priority and interval."""
    src: str
    vrid: int
    priority: int
    adver_int: float


# -- effects out ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SendAdvert:
    priority: int


@dataclass(frozen=True, slots=True)
class TakeVips:
    pass


@dataclass(frozen=True, slots=True)
class ReleaseVips:
    pass


@dataclass(frozen=True, slots=True)
class Notify:
    """Run notify_<state> then `notify INSTANCE <name> <state> <priority>`."""
    state: str
    priority: int


@dataclass(frozen=True, slots=True)
class Log:
    message: str


# -- configuration --------------------------------------------------------------------------

@dataclass(frozen=True)
class InstanceConfig:
    name: str
    vrid: int
    src_ip: str
    priority: int = PRIO_DEFAULT
    adver_int: float = 1.0
    version: int = 2
    initial_state: str = BACKUP
    nopreempt: bool = False
    preempt_delay: float = 0.0
    track: dict[str, int] = field(default_factory=dict)  # script name → weight (0 = FAULT)


def skew_time(priority: int, adver_int: float, version: int) -> float:
    """VRRP_TIMER_SKEW: v3 (256 − prio) × Master_Adver_Interval / 256, v2 (256 − prio)/256."""
    scale = adver_int if version == 3 else 1.0
    return (256 - priority) * scale / 256


def master_down_interval(priority: int, adver_int: float, version: int) -> float:
    """VRRP_MS_DOWN_TIMER: 3 × Master_Adver_Interval + Skew_Time."""
    return DOWN_TIMER_ADVERTS * adver_int + skew_time(priority, adver_int, version)


def _addr_cmp(a: str, b: str) -> int:
    x, y = int(ipaddress.ip_address(a)), int(ipaddress.ip_address(b))
    return (x > y) - (x < y)


class Instance:
    """A vrrp_instance. `start`, `receive`, `tick`, `script_status`, `stop` return effects."""

    def __init__(self, cfg: InstanceConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.state = INIT
        self.effective_priority = cfg.priority
        self.master_adver_int = cfg.adver_int
        self.master_src: str | None = None
        self.master_priority: int | None = None
        # Tracked script results: None until the first result, then True (OK) / False.
        self.scripts: dict[str, bool | None] = {name: None for name in cfg.track}
        self._down_at: float | None = None
        self._advert_at: float | None = None
        self._preempt_at: float | None = None  # end of a running preempt_delay
        # keepalived's per-instance counters (vrrp_stats), those that apply here
        self.stats = dict.fromkeys(("advert_rcvd", "advert_sent", "become_master",
                                    "release_master", "pri_zero_rcvd", "pri_zero_sent"), 0)

    # -- timers -------------------------------------------------------------------------
    def deadline(self) -> float | None:
        """When `tick` must run next (None: nothing pending)."""
        if self.state == MASTER:
            return self._advert_at
        if self.state == BACKUP:
            return self._down_at
        return None

    def down_interval(self) -> float:
        return master_down_interval(self.effective_priority, self.master_adver_int,
                                    self.cfg.version)

    def skew(self) -> float:
        return skew_time(self.effective_priority, self.master_adver_int, self.cfg.version)

    def _arm_down(self, now: float, interval: float | None = None) -> None:
        self._down_at = now + (self.down_interval() if interval is None else interval)

    # -- entry points ---------------------------------------------------------------------
    def _account(self, before: str, effects: list) -> list:
        for e in effects:
            if isinstance(e, SendAdvert):
                self.stats["advert_sent"] += 1
                self.stats["pri_zero_sent"] += e.priority == PRIO_STOP
        if before != MASTER and self.state == MASTER:
            self.stats["become_master"] += 1
        elif before == MASTER and self.state != MASTER:
            self.stats["release_master"] += 1
        return effects

    def start(self, now: float) -> list:
        """Leave INIT, unless a weight-0 script has no result yet (keepalived waits for it)."""
        before = self.state
        return self._account(before, self._start(now))

    def _start(self, now: float) -> list:
        if self.state != INIT or self._waiting_for_fault_scripts():
            return []
        if self._faulted():
            return self._enter_fault(now)
        if self.cfg.initial_state == MASTER and self.cfg.priority == PRIO_OWNER:
            return self._become_master(now)
        self.state = BACKUP
        self.master_adver_int = self.cfg.adver_int
        self._arm_down(now)
        if self.cfg.preempt_delay > 0:  # keepalived starts the delay when it loads the config
            self._preempt_at = now + self.cfg.preempt_delay
        return [Log(f"({self.name}) Entering BACKUP STATE (init)"),
                Notify(BACKUP, self.effective_priority)]

    def tick(self, now: float) -> list:
        before = self.state
        return self._account(before, self._tick(now))

    def _tick(self, now: float) -> list:
        if self.state == MASTER and self._advert_at is not None and now >= self._advert_at:
            self._advert_at = now + self.cfg.adver_int
            return [SendAdvert(self.effective_priority)]
        if self.state == BACKUP and self._down_at is not None and now >= self._down_at:
            return [Log(f"({self.name}) Receive advertisement timeout"),
                    *self._become_master(now)]
        return []

    def receive(self, advert: Advert, now: float) -> list:
        if advert.vrid != self.cfg.vrid:
            return []
        self.stats["advert_rcvd"] += 1
        self.stats["pri_zero_rcvd"] += advert.priority == PRIO_STOP
        before = self.state
        return self._account(before, self._receive(advert, now))

    def _receive(self, advert: Advert, now: float) -> list:
        if self.state == BACKUP:
            return self._backup_rx(advert, now)
        if self.state == MASTER:
            return self._master_rx(advert, now)
        return []  # INIT, FAULT, STOP ignore adverts

    def stop(self, now: float) -> list:
        """Clean shutdown: a master releases its addresses and sends a priority-0 advert."""
        before = self.state
        return self._account(before, self._stop(now))

    def _stop(self, now: float) -> list:
        effects: list = []
        if self.state == MASTER:
            effects += [SendAdvert(PRIO_STOP), Log(f"({self.name}) sent 0 priority"),
                        ReleaseVips(), Log(f"({self.name}) removing VIPs.")]
        if self.state != STOP:
            self.state = STOP
            effects.append(Notify(STOP, self.effective_priority))
        self._down_at = self._advert_at = None
        return effects

    def script_status(self, script: str, ok: bool, now: float) -> list:
        """A tracked vrrp_script changed status (after its rise/fall counting)."""
        before = self.state
        return self._account(before, self._script_status(script, ok, now))

    def _script_status(self, script: str, ok: bool, now: float) -> list:
        if script not in self.scripts or self.state == STOP:
            return []
        self.scripts[script] = ok
        effects: list = []
        new = self._compute_priority()
        if new != self.effective_priority:
            effects.append(Log(f"({self.name}) Changing effective priority from "
                               f"{self.effective_priority} to {new}"))
            self.effective_priority = new
        if self.state == INIT:
            return effects + self._start(now)
        faulted = self._faulted()
        if faulted and self.state != FAULT:
            effects += self._enter_fault(now)
        elif not faulted and self.state == FAULT:
            self.state = BACKUP
            self.master_adver_int = self.cfg.adver_int
            self._preempt_at = None
            self._arm_down(now)
            effects += [Log(f"({self.name}) Entering BACKUP STATE"),
                        Notify(BACKUP, self.effective_priority)]
        return effects

    # -- state handlers -------------------------------------------------------------------
    def _backup_rx(self, ad: Advert, now: float) -> list:
        if ad.priority == PRIO_STOP:
            # the master is stopping: take over after the skew only
            self._down_at = now + self.skew()
            return []
        in_preempt_delay = self.cfg.preempt_delay > 0 and (
            self._preempt_at is None or self._preempt_at > now)
        if (self.cfg.nopreempt or ad.priority >= self.effective_priority or in_preempt_delay):
            if self.cfg.version == 3:
                self.master_adver_int = ad.adver_int  # RFC 5798: learn the master's interval
            self.master_src, self.master_priority = ad.src, ad.priority
            self._arm_down(now)
            if self.cfg.preempt_delay > 0:
                if ad.priority >= self.effective_priority:
                    self._preempt_at = None
                elif self._preempt_at is None:
                    self._preempt_at = now + self.cfg.preempt_delay
            return []
        # preempt: a lower priority master is ignored, so our down timer runs out
        self.master_src = ad.src
        return [Log(f"({self.name}) received lower priority ({ad.priority}) advert from "
                    f"{ad.src} - discarding")]

    def _master_rx(self, ad: Advert, now: float) -> list:
        if ad.priority == PRIO_STOP:
            return [SendAdvert(self.effective_priority)]
        cmp = _addr_cmp(ad.src, self.cfg.src_ip)
        ours = self.effective_priority
        if ad.priority < ours or (ad.priority == ours and cmp < 0):
            return [Log(f"({self.name}) Received advert from {ad.src} with lower priority "
                        f"{ad.priority}, ours {ours}, forcing new election"),
                    SendAdvert(ours)]
        if ad.priority == ours and cmp == 0:
            return [Log(f"({self.name}) WARNING - equal priority advert received from remote "
                        "host with our IP address.")]
        if ad.priority > ours:
            why = (f"({self.name}) Master received advert from {ad.src} with higher priority "
                   f"{ad.priority}, ours {ours}")
        else:
            why = (f"({self.name}) Master received advert from {ad.src} with same priority "
                   f"{ad.priority} but higher IP address than ours")
        if self.cfg.version == 3:
            self.master_adver_int = ad.adver_int
        self.master_src, self.master_priority = ad.src, ad.priority
        self.state = BACKUP
        self._advert_at = None
        self._preempt_at = None
        self._arm_down(now)
        return [Log(why), Log(f"({self.name}) Entering BACKUP STATE"), ReleaseVips(),
                Log(f"({self.name}) removing VIPs."), Notify(BACKUP, ours)]

    def _become_master(self, now: float) -> list:
        self.state = MASTER
        self._down_at = None
        self._preempt_at = None
        self.master_adver_int = self.cfg.adver_int
        self.master_src, self.master_priority = self.cfg.src_ip, self.effective_priority
        self._advert_at = now + self.cfg.adver_int
        # keepalived sends the advert first, so the old master lets go before we take over
        return [SendAdvert(self.effective_priority),
                Log(f"({self.name}) Entering MASTER STATE"),
                TakeVips(), Log(f"({self.name}) setting VIPs."),
                Notify(MASTER, self.effective_priority)]

    def _enter_fault(self, now: float) -> list:
        init = " (init)" if self.state == INIT else ""
        effects: list = [Log(f"({self.name}) Entering FAULT STATE{init}")]
        if self.state == MASTER:
            # warn the others so that a backup takes over after its skew only
            effects += [SendAdvert(PRIO_STOP), Log(f"({self.name}) sent 0 priority"),
                        ReleaseVips(), Log(f"({self.name}) removing VIPs.")]
        self.state = FAULT
        self._down_at = self._advert_at = self._preempt_at = None
        if self.master_src == self.cfg.src_ip:
            self.master_src = self.master_priority = None
        return effects + [Notify(FAULT, self.effective_priority)]

    # -- tracking -------------------------------------------------------------------------
    def _waiting_for_fault_scripts(self) -> bool:
        return any(w == 0 and self.scripts[s] is None for s, w in self.cfg.track.items())

    def _faulted(self) -> bool:
        return any(w == 0 and self.scripts[s] is False for s, w in self.cfg.track.items())

    def _compute_priority(self) -> int:
        if self.cfg.priority == PRIO_OWNER:
            return PRIO_OWNER  # weights never move the owner
        prio = self.cfg.priority
        for script, weight in self.cfg.track.items():
            ok = self.scripts[script]
            if weight > 0 and ok is True:
                prio += weight
            elif weight < 0 and ok is False:
                prio += weight
        return max(1, min(PRIO_OWNER - 1, prio))

    def data(self) -> dict:
        """The fields of keepalived's JSON dump (vrrp_json.c "data") that apply here."""
        return {"iname": self.name, "master_priority": self.master_priority or 0,
                "vrid": self.cfg.vrid, "base_priority": self.cfg.priority,
                "effective_priority": self.effective_priority,
                "vipset": self.state == MASTER, "adver_int": self.cfg.adver_int,
                "master_adver_int": self.master_adver_int, "nopreempt": self.cfg.nopreempt,
                "preempt_delay": self.cfg.preempt_delay, "state": STATE_CODES[self.state],
                "wantstate": STATE_CODES[self.state], "version": self.cfg.version}

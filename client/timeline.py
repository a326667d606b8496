"""The thrasher's `timeline.html`, sans-IO: what happened during a run (data in) as one
self-contained HTML page with inline SVG (string out). No scripts, no network resources; the
tooltips are SVG `<title>` elements.

Bands from the top: health (HEALTH_OK / WARN / ERR), client availability (red where no load
client got an answer), the faults (a marker at each fault, its window shaded until the heal),
then one lane per daemon coloured by its state: MDS daemons as the map showed them, the
monitor and the osd as the thrasher left them (running, down, paused). The lane names stay
on the left while the plot scrolls sideways, so a 30-minute run keeps about 2 px a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

MDS_COLOURS: dict[str, str] = {  # MDSMap states (common/states.py), then "not in the map"
    "up:active": "#2e7d32",
    "up:standby-replay": "#64b5f6",
    "up:standby": "#b0bec5",
    "up:boot": "#cfd8dc",
    "up:creating": "#00897b",
    "up:starting": "#26a69a",
    "up:replay": "#ffb300",
    "up:resolve": "#ffd54f",
    "up:reconnect": "#fb8c00",
    "up:rejoin": "#f4511e",
    "up:clientreplay": "#8d6e63",
    "up:stopping": "#8e24aa",
    "absent": "#ffffff",
}
PROCESS_COLOURS = {"running": "#a5d6a7", "down": "#c62828", "paused": "#4a148c"}
HEALTH_COLOURS = {"HEALTH_OK": "#43a047", "HEALTH_WARN": "#fdd835", "HEALTH_ERR": "#e53935",
                  "no answer": "#9e9e9e"}
CLIENT_COLOURS = {"answered": "#c8e6c9", "no client answered": "#d32f2f", "no load": "#eeeeee"}
FAULT_COLOURS = {  # one per kind of client/nemesis.py (disconnect: compose only)
    "kill": "#d50000", "stop_short": "#6a1b9a", "stop_long": "#311b92", "restart": "#ef6c00",
    "mds_fail": "#c51162", "blackhole": "#212121", "socket_failures": "#0277bd",
    "delay": "#00838f", "mon_restart": "#5d4037", "osd_restart": "#827717",
    "osd_pause": "#33691e", "max_mds": "#1565c0", "disconnect": "#ffab00",
    "partition_oneway": "#ad1457", "partition_twoway": "#4a148c", "partition_client": "#00695c",
}
GAP_MIN = 1.0  # seconds without any answer that make a visible client gap
PX_PER_S_MIN = 2.0  # a long run scrolls rather than squeezes
PLOT_MIN = 1200  # px: a short run fills the width
LABEL_W, LANE_H, BAND_H, AXIS_H = 120, 18, 16, 22
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


@dataclass
class Timeline:
    """What the thrasher saw, on its clock (seconds from the start of the run)."""
    end: float
    mds: dict[str, list[tuple[float, str]]] = field(default_factory=dict)  # changes only
    processes: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    health: list[tuple[float, str]] = field(default_factory=list)
    faults: list[dict] = field(default_factory=list)  # report.json's fault records
    gaps: list[tuple[float, float]] = field(default_factory=list)  # no client answered
    load: tuple[float, float] | None = None  # when the client load ran
    title: str = "mdsemu thrash"

    def note(self, name: str, t: float, state: str) -> None:
        """Record MDS `name` in `state` at `t` (kept only if it changed)."""
        changed(self.mds.setdefault(name, []), t, state)


def changed(lane: list[tuple[float, str]], t: float, state: str) -> None:
    """Append (t, state) to a lane of changes unless the state is the same."""
    if not lane or lane[-1][1] != state:
        lane.append((t, state))


def mds_states(fsdump: dict | None, fs: str) -> dict[str, str]:
    """{daemon name: state} of `fs dump -f json` (its ranks and followers, and the standbys)."""
    out = {}
    for f in (fsdump or {}).get("filesystems", []):
        if f["mdsmap"]["fs_name"] == fs:
            for i in f["mdsmap"]["info"].values():
                out[i["name"]] = i["state"]
    for i in (fsdump or {}).get("standbys", []):
        out[i["name"]] = i["state"]
    return out


def unanswered(answers: list[float], start: float, end: float,
               least: float = GAP_MIN) -> list[tuple[float, float]]:
    """The stretches of at least `least` seconds within [start, end] in which no client got an
    answer (`answers`: every answer time of every client)."""
    out, prev = [], start
    for t in sorted(a for a in answers if start <= a <= end) + [end]:
        if t - prev >= least:
            out.append((prev, t))
        prev = max(prev, t)
    return out


def process_lanes(faults: list[dict], names: list[str], end: float
                  ) -> dict[str, list[tuple[float, str]]]:
    """The mon's and osd's lanes from the faults the thrasher applied to them."""
    what = {"mon_restart": "down", "osd_restart": "down", "osd_pause": "paused"}
    lanes = {n: [(0.0, "running")] for n in names}
    for f in faults:
        if f["kind"] in what and f.get("target") in lanes:
            healed = f.get("healed_at")
            lanes[f["target"]].append((f["applied_at"], what[f["kind"]]))
            lanes[f["target"]].append((end if healed is None else healed, "running"))
    return lanes


def tick_step(span: float, width: float, least_px: float = 80) -> int:
    """The smallest step of TICK_STEPS whose ticks are at least `least_px` apart."""
    for step in TICK_STEPS:
        if step * width / max(span, 1e-9) >= least_px:
            return step
    return TICK_STEPS[-1]


def clock(t: float) -> str:
    t = int(round(t))
    return f"{t // 3600}:{t // 60 % 60:02d}:{t % 60:02d}" if t >= 3600 else f"{t // 60}:{t % 60:02d}"


def _segments(changes: list[tuple[float, str]], end: float):
    for (t, state), nxt in zip(changes, changes[1:] + [(end, None)], strict=False):
        if nxt[0] > t:
            yield t, nxt[0], state


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "",
          extra: str = "") -> str:
    title = f"<title>{escape(tip)}</title>" if tip else ""
    return (f'<rect x="{x:.1f}" y="{y}" width="{max(w, 0.5):.1f}" height="{h}" '
            f'fill="{fill}"{extra}>{title}</rect>')


def render(tl: Timeline) -> str:
    """The page."""
    end = max(tl.end, 1.0)
    width = max(PLOT_MIN, end * PX_PER_S_MIN)
    x = lambda t: min(max(t, 0.0), end) * width / end  # noqa: E731
    rows: list[tuple[str, str]] = []  # (label, svg of the row at y=0)
    y_of: dict[str, float] = {}

    def lane(changes, colours, label, h=LANE_H):
        parts = []
        for a, b, state in _segments(changes, end):
            parts.append(_rect(x(a), 0, x(b) - x(a), h, colours.get(state, "#000000"),
                               f"{label}: {state} {a:.1f}s-{b:.1f}s",
                               ' stroke="#cfd8dc" stroke-width="0.5"' if state == "absent"
                               else ""))
        return "".join(parts)

    rows.append(("health", lane(tl.health, HEALTH_COLOURS, "health", BAND_H)))
    clients = [_rect(0, 0, width, BAND_H, CLIENT_COLOURS["no load"], "no client load")]
    if tl.load:
        a, b = tl.load
        clients.append(_rect(x(a), 0, x(b) - x(a), BAND_H, CLIENT_COLOURS["answered"],
                             f"client load {a:.1f}s-{b:.1f}s"))
    for a, b in tl.gaps:
        clients.append(_rect(x(a), 0, x(b) - x(a), BAND_H, CLIENT_COLOURS["no client answered"],
                             f"no client answered {a:.1f}s-{b:.1f}s ({b - a:.1f}s)"))
    rows.append(("clients", "".join(clients)))
    marks = []
    for f in tl.faults:
        colour = FAULT_COLOURS.get(f["kind"], "#000000")
        a, b = f["applied_at"], f.get("healed_at") or f["applied_at"]
        rec = f.get("recovered_after")
        tip = (f"fault {f['index']}: {f['kind']} {f.get('target') or f.get('role')} at "
               f"{a:.1f}s, healed {b:.1f}s, recovered after "
               f"{'never' if rec is None else f'{rec:.1f}s'}")
        marks.append(_rect(x(a), 2, x(b) - x(a), LANE_H, colour, tip, ' fill-opacity="0.25"'))
        marks.append(f'<path d="M{x(a) - 3:.1f} 0 h6 l-3 6 z" fill="{colour}"/>'
                     f'<line x1="{x(a):.1f}" x2="{x(a):.1f}" y1="0" y2="{LANE_H + 2}" '
                     f'stroke="{colour}" stroke-width="1.5"><title>{escape(tip)}</title></line>')
    rows.append(("faults", "".join(marks)))
    for name in sorted(tl.mds):
        y_of[f"mds.{name}"] = len(rows)
        rows.append((f"mds.{name}", lane(tl.mds[name], MDS_COLOURS, f"mds.{name}")))
    for name in sorted(tl.processes):
        rows.append((name, lane(tl.processes[name], PROCESS_COLOURS, name)))

    pitch = LANE_H + 6
    height = AXIS_H + pitch * len(rows) + 4
    step = tick_step(end, width)
    axis = []
    for i in range(int(end // step) + 1):
        tx = x(i * step)
        axis.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{AXIS_H - 4}" y2="{height}" '
                    f'stroke="#e0e0e0"/><text x="{tx + 2:.1f}" y="{AXIS_H - 8}" '
                    f'font-size="11">{clock(i * step)}</text>')
    body = "".join(f'<g transform="translate(0,{AXIS_H + pitch * i + 3})">{svg}</g>'
                   for i, (_, svg) in enumerate(rows))
    labels = "".join(f'<text x="{LABEL_W - 6}" y="{AXIS_H + pitch * i + 3 + 13}" '
                     f'text-anchor="end" font-size="12">{escape(label)}</text>'
                     for i, (label, _) in enumerate(rows))
    return _PAGE.format(
        title=escape(tl.title), lw=LABEL_W, h=height, w=f"{width:.0f}",
        labels=labels, axis="".join(axis), body=body,
        summary=escape(f"{len(tl.faults)} faults over {clock(end)} (m:ss); "
                       f"{len(tl.gaps)} client gaps of {GAP_MIN:g}s or more"),
        legend=legend())


def legend() -> str:
    def group(name: str, colours: dict[str, str]) -> str:
        items = "".join(
            f'<span class="item"><svg width="14" height="14"><rect width="14" height="14" '
            f'fill="{c}" stroke="#607d8b" stroke-width="0.5"/></svg>{escape(k)}</span>'
            for k, c in colours.items())
        return f'<div class="group"><b>{escape(name)}</b> {items}</div>'
    return "".join((group("MDS state (lanes mds.*)", MDS_COLOURS),
                    group("process (mon, osd)", PROCESS_COLOURS),
                    group("health", HEALTH_COLOURS), group("clients", CLIENT_COLOURS),
                    group("faults (marker at the fault, shaded until healed)",
                          FAULT_COLOURS)))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 12px; color: #212121; }}
.plot {{ display: flex; border: 1px solid #cfd8dc; }}
.scroll {{ overflow-x: auto; }}
.group {{ margin: 4px 0; font-size: 12px; }}
.item {{ display: inline-block; margin-right: 12px; }}
.item svg {{ vertical-align: middle; margin-right: 3px; }}
</style></head><body>
<h1 style="font-size:16px">{title}</h1>
<p style="font-size:12px">{summary}. Hover a segment or a marker for its times.</p>
<div class="plot">
<svg width="{lw}" height="{h}" style="flex:none">{labels}</svg>
<div class="scroll"><svg width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">
{axis}{body}</svg></div>
</div>
<div class="legend">{legend}</div>
</body></html>
"""

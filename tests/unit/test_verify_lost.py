"""verify with operations acknowledged on their unsafe reply and then reported lost
(client/verify.py): counted as lost and unknown, listed, never a silent acknowledgement."""

from __future__ import annotations

from client.verify import check_history


def _op(n: int, op: str, path: str, result: str = "ok") -> list[dict]:
    base = {"client": "c0", "n": n, "op": op, "args": {"path": path, "mode": 0o755},
            "time": float(n)}
    return [dict(base, type="invoke"), dict(base, type="complete", result=result)]


def test_a_lost_operation_is_reported_and_its_effect_not_required() -> None:
    records = _op(1, "mkdir", "/load/c0/a") + _op(2, "mkdir", "/load/c0/b")
    records.append({"type": "lost", "client": "c0", "n": 2, "op": "mkdir",
                    "args": {"path": "/load/c0/b", "mode": 0o755}, "time": 3.0,
                    "reason": "blocklisted"})
    live = {"/load/c0": {"mode": 0o40755}, "/load/c0/a": {"mode": 0o40755}}
    s = check_history({"c0": "/load/c0"}, records, {"c0": live})
    assert s.violations == []  # /load/c0/b is absent: it was lost, and said so
    assert (s.ops, s.acknowledged, s.unknown) == (2, 1, 1)
    assert s.lost == ["c0 #2 mkdir /load/c0/b mode=755: blocklisted"]
    assert "lost 1" in s.text() and "lost: c0 #2 mkdir /load/c0/b" in s.text()
    assert s.to_json()["lost"] == s.lost


def test_an_acknowledged_operation_not_reported_lost_must_be_there() -> None:
    records = _op(1, "mkdir", "/load/c0/a")
    s = check_history({"c0": "/load/c0"}, records, {"c0": {"/load/c0": {"mode": 0o40755}}})
    assert s.violations == ["/load/c0/a: missing (c0 #1 mkdir /load/c0/a mode=755)"]

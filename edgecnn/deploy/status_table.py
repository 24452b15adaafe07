"""One table for many devices: what a deploy did on each host, and `--status`: each
host's release, unit state, uptime and restarts, then one row per camera with its state,
FPS and dropped frames as its /healthz and /metrics report them."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from edgecnn.core.redact import redact


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers]] + [["" if c is None else redact(str(c)) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells)


def duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{minutes}m"] * bool(minutes)
    return " ".join(parts + [f"{seconds}s"]) if not days else " ".join(parts)


def outcome_table(results: Sequence[Dict]) -> str:
    """What a deploy, rollback, stop or remove did on each host."""
    rows = [(r["host"], r.get("status", ""), r.get("release") or "-",
             f"{r['seconds']:.1f} s" if r.get("seconds") is not None else "-", r.get("detail") or "")
            for r in results]
    return table(("HOST", "RESULT", "RELEASE", "TIME", "DETAIL"), rows)


def status_table(answers: Sequence[Dict]) -> str:
    """`--status` of each host: its service, then a row per camera."""
    rows: List[Sequence[object]] = []
    for answer in answers:
        if "error" in answer:
            rows.append((answer["host"], "-", "-", "error", "-", "-", "-", "-", "-", "-", answer["error"]))
            continue
        state = f"{answer.get('active')}/{answer.get('sub')}" if answer.get("loaded") == "loaded" else "not installed"
        service = (answer["host"], answer.get("unit", "-"), answer.get("release") or "-", state,
                   duration(answer.get("uptime_s")), answer.get("restarts") or "0")
        body = (answer.get("health") or {}).get("body") or {}
        cameras = body.get("cameras") or {}
        dropped = answer.get("dropped") or {}
        health = answer.get("health") or {}
        note = "" if health.get("code") in (200, None) else f"/healthz {health.get('code')}"
        if health.get("error"):
            note = f"/healthz: {health['error']}"
        if not cameras:
            rows.append(service + ("-", "-", "-", "-", note or answer.get("status_text") or ""))
        for index, (name, camera) in enumerate(cameras.items()):
            left = service if index == 0 else ("",) * len(service)
            rows.append(left + (name, camera.get("state", "-") + (" (stalled)" if camera.get("stalled") else ""),
                                f"{float(camera.get('fps') or 0):.1f}", f"{int(dropped.get(name, 0))}",
                                note if index == 0 else ""))
    return table(("HOST", "UNIT", "RELEASE", "STATE", "UP", "RESTARTS", "CAMERA", "CAMERA STATE", "FPS", "DROPPED",
                  "NOTE"), rows)

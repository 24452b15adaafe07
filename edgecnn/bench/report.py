"""Tables and a chart from bench records: the terminal table at the end of
`edgecnn bench`, and `edgecnn bench report` (Markdown + PNG) across devices.

Rows are device x model x backend x precision x threads, with the card's accuracy
beside the latency, because a model is chosen by latency at a given accuracy. When
the same configuration (same device, same file, backend, threads) was measured more
than once (JSON lines files are appended to, so re-runs accumulate), the run with the
median p50 stands for it: one real run, not a blend, and one disturbed run among
three cannot move the figure.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

COLUMNS = ("device", "model", "backend", "precision", "threads", "p50 ms", "p90 ms", "p99 ms",
           "mean ± std ms", "FPS", "load ms", "1st ms", "peak RSS MB", "accuracy", "notes")


def _ms(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value >= 100 else f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def accuracy_text(record: Dict[str, Any]) -> str:
    accuracy = record.get("accuracy")
    if not accuracy:
        return "-"
    from edgecnn.core.task import metric

    spec = metric(accuracy["metric"])
    name = spec.label if spec is not None else accuracy["metric"]
    where = accuracy.get("dataset")
    return f"{name} {100 * accuracy['value']:.2f}%" + (f" ({where})" if where else "")


def config_key(record: Dict[str, Any]) -> Tuple:
    return (record.get("device", {}).get("id"), record.get("model_sha256"), record["backend"],
            record.get("threads"), bool(record.get("pipeline")))


def representative(records: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One record per device and configuration: of its successful runs the one with the
    median p50 (lower middle for an even count), marked with how many runs there were;
    the latest failure when none succeeded."""
    groups: Dict[Tuple, List[Dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(config_key(record), []).append(record)
    chosen = []
    for group in groups.values():
        ok = sorted((r for r in group if r.get("status") == "ok"), key=lambda r: r["latency_ms"]["p50"])
        if ok:
            pick = dict(ok[(len(ok) - 1) // 2])
            pick["runs_combined"] = len(ok)
        else:
            pick = max(group, key=lambda r: r.get("time", ""))
        chosen.append(pick)
    return sorted(chosen, key=lambda r: (r.get("device", {}).get("name", ""), r["model"], r["backend"],
                                         str(r.get("precision")), r.get("threads") or 0))


def row(record: Dict[str, Any]) -> List[str]:
    device = record.get("device", {}).get("name", "?")
    threads = str(record["threads"]) if record.get("threads") else "default"
    head = [device, record["model"], record["backend"], record.get("precision") or "-", threads]
    if record.get("status") != "ok":
        return head + ["failed"] + ["-"] * 8 + [record.get("error", "unknown reason")]
    lat = record["latency_ms"]
    notes = []
    if record.get("remote"):
        notes.append(f"via {record['remote']}")
    pipeline = record.get("pipeline")
    if pipeline and pipeline.get("error"):
        notes.append(f"pipeline failed: {pipeline['error']}")
    elif pipeline:
        notes.append(f"capture-to-result p50 {_ms(pipeline['end_to_end_ms']['p50'])} ms, "
                     f"frame age at start p50 {_ms(pipeline['frame_age_at_start_ms']['p50'])} ms, "
                     f"{pipeline['fps']:.1f} FPS")
    if record.get("runs_combined", 1) > 1:
        notes.append(f"median of {record['runs_combined']} runs")
    if record.get("noisy"):
        notes.append("noisy: " + "; ".join(record["noisy"]))
    rss = record.get("peak_rss_mb")
    return head + [_ms(lat["p50"]), _ms(lat["p90"]), _ms(lat["p99"]), f"{_ms(lat['mean'])} ± {_ms(lat['std'])}",
                   f"{record['fps']:.1f}", _ms(record.get("load_ms")), _ms(record.get("first_inference_ms")),
                   f"{rss:.0f}" if rss is not None else "-", accuracy_text(record), "; ".join(notes)]


def text_table(records: Sequence[Dict[str, Any]]) -> str:
    """Aligned plain-text table for the terminal (device column left out when only one)."""
    rows = [row(r) for r in records]
    columns = list(COLUMNS)
    if len({r[0] for r in rows}) <= 1:
        columns, rows = columns[1:], [r[1:] for r in rows]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def markdown_table(records: Sequence[Dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(v.replace("|", "\\|") for v in row(r)) + " |" for r in records]
    return "\n".join(lines)


def device_lines(records: Sequence[Dict[str, Any]]) -> List[str]:
    seen: Dict[str, Dict[str, Any]] = {}
    for record in records:
        device = record.get("device") or {}
        seen.setdefault(device.get("id", "?"), device)
    lines = []
    for device in seen.values():
        versions = ", ".join(f"{k} {v}" for k, v in sorted((device.get("versions") or {}).items()) if v)
        lines.append(f"- **{device.get('name', '?')}**: {device.get('board')}, CPU {device.get('cpu')}, "
                     f"{device.get('cores')} cores, {device.get('machine')}, ISA "
                     f"{' '.join(device.get('isa_flags') or []) or 'none listed'}; {device.get('os')}, "
                     f"Python {device.get('python')}; {versions}")
    return lines


def pareto_groups(records: Sequence[Dict[str, Any]]) -> Dict[Tuple, List[Dict[str, Any]]]:
    """Successful inference-only records that can be weighed against each other: same
    device and threads, accuracy measured with the same metric on the same data. Groups
    of at least two variants (say fp32, pruned, int8, pruned+int8) are kept."""
    groups: Dict[Tuple, List[Dict[str, Any]]] = {}
    for record in representative(records):
        accuracy = record.get("accuracy")
        if record.get("status") != "ok" or not accuracy or record.get("pipeline") or "size_kb" not in record:
            continue
        key = (record.get("device", {}).get("name", "?"), record.get("threads"), accuracy["metric"],
               accuracy.get("dataset"))
        groups.setdefault(key, []).append(record)
    return {key: group for key, group in groups.items() if len(group) >= 2}


def pareto_points(group: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [{"name": f"{r['model']} ({r['backend']})", "accuracy": 100 * r["accuracy"]["value"],
             "latency_ms": r["latency_ms"]["p50"], "size_kb": r["size_kb"], "record": r} for r in group]


def fp32_reference(points: Sequence[Dict[str, Any]], backend: str) -> Optional[Dict[str, Any]]:
    """The original float model on a backend: its most accurate fp32 variant, the largest
    file among equals (pruning makes files smaller)."""
    float_points = [p for p in points if p["record"]["backend"] == backend and p["record"].get("precision") == "fp32"]
    return max(float_points, key=lambda p: (p["accuracy"], p["size_kb"]), default=None)


def pareto_table(group: Sequence[Dict[str, Any]]) -> str:
    """Accuracy vs latency vs size, fastest first; 'front' marks the variants that no other
    variant beats on both latency and accuracy."""
    from edgecnn.core.plots import pareto_front

    points = sorted(pareto_points(group), key=lambda p: p["latency_ms"])
    front = {id(p) for p in pareto_front(points)}
    lines = ["| model | backend | precision | accuracy | p50 ms | speed-up vs fp32 | size KB | on the front |",
             "|---|---|---|---|---|---|---|---|"]
    for p in points:
        r = p["record"]
        reference = fp32_reference(points, r["backend"])
        speedup = f"{reference['latency_ms'] / p['latency_ms']:.2f}x" if reference else "-"
        lines.append(f"| {r['model']} | {r['backend']} | {r.get('precision') or '-'} | {accuracy_text(r)} | "
                     f"{_ms(p['latency_ms'])} | {speedup} | {p['size_kb']:.0f} | {'yes' if id(p) in front else 'no'} |")
    return "\n".join(lines)


def pareto_title(key: Tuple) -> str:
    device, threads, metric, dataset = key
    return f"{device}, {threads or 'default'} threads, {metric} on {dataset or 'unnamed data'}"


def pareto_file_name(key: Tuple) -> str:
    return "pareto-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in pareto_title(key)) + ".png"


def pareto_sections(records: Sequence[Dict[str, Any]], with_charts: bool) -> List[str]:
    parts: List[str] = []
    for key, group in pareto_groups(records).items():
        parts += ["", f"## Accuracy vs latency vs size: {pareto_title(key)}", "",
                  "Speed-up is against the original fp32 model on the same backend (its most accurate fp32 "
                  "variant).", "", pareto_table(group)]
        if with_charts:
            parts += ["", f"![accuracy vs p50 latency, marker area ~ file size]({pareto_file_name(key)})"]
    return parts


def markdown_report(records: Sequence[Dict[str, Any]], chart: Optional[str] = None) -> str:
    chosen = representative(records)
    parts = ["# Inference latency", "",
             "Inference only (`Backend.infer` on a preprocessed input), one fresh process per "
             "configuration; latency in milliseconds, accuracy from each model's card.", "",
             markdown_table(chosen), "", "Devices:", "", *device_lines(chosen)]
    if len(chosen) < len(records):
        parts += ["", f"{len(records)} records of {len(chosen)} configurations: where a configuration was run "
                  "more than once, the run with the median p50 is shown (notes: 'median of N runs')."]
    if chart:
        parts += ["", f"![p50 latency, whiskers to p90]({chart})"]
    parts += pareto_sections(records, with_charts=chart is not None)
    return "\n".join(parts) + "\n"


def chart(records: Sequence[Dict[str, Any]], path: str) -> None:
    """Horizontal bars of p50 latency (whisker to p90), one bar per configuration, one
    colour per device, with the accuracy in each bar's label."""
    try:
        import matplotlib
    except ImportError:
        from edgecnn.core.errors import UserError

        raise UserError("bench report draws its chart with matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in representative(records) if r.get("status") == "ok"]
    if not ok:
        from edgecnn.core.errors import UserError

        raise UserError("no successful bench records to chart")
    devices = list(dict.fromkeys(r["device"]["name"] for r in ok))
    colours = plt.get_cmap("tab10")
    labels = [f"{r['model']} {r['backend']} {r.get('precision') or ''} t{r.get('threads') or 'def'}"
              f"  [{accuracy_text(r)}]" for r in ok]
    p50 = [r["latency_ms"]["p50"] for r in ok]
    spread = [max(0.0, r["latency_ms"]["p90"] - r["latency_ms"]["p50"]) for r in ok]
    figure, axes = plt.subplots(figsize=(10, 1.2 + 0.38 * len(ok)))
    positions = range(len(ok))[::-1]
    axes.barh(list(positions), p50, xerr=[[0] * len(ok), spread], capsize=3,
              color=[colours(devices.index(r["device"]["name"]) % 10) for r in ok])
    axes.set_yticks(list(positions), labels, fontsize=8)
    axes.set_xlabel("latency per inference, ms (bar p50, whisker p90)")
    if max(p50) / max(min(p50), 1e-6) > 50:
        axes.set_xscale("log")
    else:
        axes.set_xlim(left=0)
    from matplotlib.patches import Patch

    axes.legend(handles=[Patch(color=colours(i % 10), label=d) for i, d in enumerate(devices)],
                loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(records: Sequence[Dict[str, Any]], out_dir: str) -> Tuple[str, str, str]:
    """Write OUT/bench.md and OUT/bench.png; returns (markdown text, md path, png path)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = out / "bench.png"
    chart(records, str(png))
    from edgecnn.core.atomic import write_text_atomic
    from edgecnn.core.plots import save_pareto_png

    for key, group in pareto_groups(records).items():
        save_pareto_png(pareto_points(group), out / pareto_file_name(key), f"{pareto_title(key)} vs p50 latency")
    text = markdown_report(records, png.name)
    md = out / "bench.md"
    write_text_atomic(md, text)
    return text, str(md), str(png)

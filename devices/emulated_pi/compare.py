"""Whether two machines' outputs of the same frames agree, within tolerances that allow
for the different kernels (and float rounding) of x86 and ARM but not for a bug.

Standard library only: `--compare` runs anywhere, on records copied off a real Pi.
"""
from __future__ import annotations

import json
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from devices.emulated_pi.steps import Missing

CONF = 0.25  # edgecnn run's default --conf
IOU_MIN, SCORE_TOL, AREA_TOL, FP32_REL_TOL = 0.99, 0.01, 0.01, 1e-4


def read_records(path: str) -> List[dict]:
    """`edgecnn run --json` output: one JSON record per line."""
    try:
        with open(path) as handle:
            lines = [line for line in handle if line.strip()]
    except OSError as exc:
        raise Missing(f"{path}: cannot read: {exc.strerror or exc}") from None
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise Missing(f"{path}:{number}: not a JSON record (expected `edgecnn run --json` output)") from None
        if not isinstance(record, dict) or "frame" not in record or "task" not in record:
            raise Missing(f"{path}:{number}: no frame/task fields (expected `edgecnn run --json` output)")
        records.append(record)
    if not records:
        raise Missing(f"{path}: no records")
    return records


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else float(a == b)


class Tally:
    """What the comparisons of every frame add up to."""

    def __init__(self) -> None:
        self.problems: List[str] = []
        self.pairs = 0  # detections, classes and area labels found on both sides
        self.borderline = 0
        self.ious: List[float] = []
        self.score_diffs: List[float] = []
        self.area_diffs: List[float] = []
        self.areas_seen = False


def compare_detections(frame: int, a: dict, b: dict, tally: Tally, conf: float) -> None:
    """Detections pair up within a class by IoU (best first); a paired box must overlap
    by IOU_MIN and its scores differ by at most SCORE_TOL. A detection without a
    partner counts as borderline, not as a disagreement, when its score is within
    SCORE_TOL of the confidence threshold (one side's 0.2501 is the other's 0.2499)."""
    da, db = a.get("detections", []), b.get("detections", [])
    candidates = sorted(((box_iou(x["box"], y["box"]), i, j) for i, x in enumerate(da)
                         for j, y in enumerate(db) if x["class_id"] == y["class_id"]), reverse=True)
    used_a, used_b = set(), set()
    for iou, i, j in candidates:
        if i in used_a or j in used_b or iou <= 0:
            continue
        used_a.add(i)
        used_b.add(j)
        diff = abs(da[i]["score"] - db[j]["score"])
        tally.ious.append(iou)
        tally.score_diffs.append(diff)
        tally.pairs += 1
        if iou < IOU_MIN or diff > SCORE_TOL:
            tally.problems.append(f"frame {frame}: {da[i]['label']} IoU {iou:.4f}, score {da[i]['score']} vs "
                                  f"{db[j]['score']}")
    for side, items, used in (("reference", da, used_a), ("device", db, used_b)):
        for k, item in enumerate(items):
            if k in used:
                continue
            if item["score"] < conf + SCORE_TOL:
                tally.borderline += 1
            else:
                tally.problems.append(f"frame {frame}: {item['label']} {item['score']} at {item['box']} "
                                      f"only in the {side} output")


def compare_classes(frame: int, a: dict, b: dict, tally: Tally, conf: float) -> None:
    """A classifier's record: the same top label, and the score of every class both
    sides list within SCORE_TOL (each lists its top k, which may differ at the tail)."""
    if a.get("label") != b.get("label"):
        tally.problems.append(f"frame {frame}: top class {a.get('label')} vs {b.get('label')}")
    scores_b = {c["class_id"]: c["score"] for c in b.get("classes", [])}
    for entry in a.get("classes", []):
        if entry["class_id"] in scores_b:
            diff = abs(entry["score"] - scores_b[entry["class_id"]])
            tally.score_diffs.append(diff)
            tally.pairs += 1
            if diff > SCORE_TOL:
                tally.problems.append(f"frame {frame}: {entry['label']} score {entry['score']} vs "
                                      f"{scores_b[entry['class_id']]}")


def compare_areas(frame: int, a: dict, b: dict, tally: Tally, conf: float) -> None:
    """A segmenter's record: the same labels, each covering the same fraction of the
    frame within AREA_TOL. A label on one side only counts as borderline when its
    fraction is itself within AREA_TOL (a few pixels at a boundary), else it disagrees."""
    tally.areas_seen = True
    ref, dev = ({entry.get("class_id", entry["label"]): entry for entry in record.get("areas", [])}
                for record in (a, b))
    for key, entry in ref.items():
        if key in dev:
            diff = abs(entry["fraction"] - dev[key]["fraction"])
            tally.area_diffs.append(diff)
            tally.pairs += 1
            if diff > AREA_TOL:
                tally.problems.append(f"frame {frame}: {entry['label']} covers {entry['fraction']} vs "
                                      f"{dev[key]['fraction']} of the frame")
    for side, own, other in (("reference", ref, dev), ("device", dev, ref)):
        for key, entry in own.items():
            if key in other:
                continue
            if entry["fraction"] <= AREA_TOL:
                tally.borderline += 1
            else:
                tally.problems.append(f"frame {frame}: {entry['label']} ({entry['fraction']} of the frame) "
                                      f"only in the {side} output")


# A record's fields and how each is compared; a record is compared by every field it has.
FIELDS: Tuple[Tuple[str, Callable[[int, dict, dict, Tally, float], None]], ...] = (
    ("detections", compare_detections), ("classes", compare_classes), ("areas", compare_areas))
FIELD_NAMES = ", ".join(field for field, _ in FIELDS[:-1]) + f" or {FIELDS[-1][0]}"


def _worst(values: List[float], pick: Callable[[List[float]], float]) -> Optional[float]:
    return round(pick(values), 5) if values else None


def compare_records(reference: List[dict], device: List[dict], conf: float = CONF) -> dict:
    """Frame-by-frame agreement of two `edgecnn run --json` outputs of the same source.

    Frames are joined on their index; the records of a frame must be of the same task,
    and are compared by their fields (FIELDS: detections, classes, areas). A record
    with none of them cannot be checked and is a problem.
    """
    ref = {r["frame"]: r for r in reference}
    dev = {r["frame"]: r for r in device}
    common = sorted(set(ref) & set(dev))
    tally = Tally()
    for frame in common:
        a, b = ref[frame], dev[frame]
        if a["task"] != b["task"]:
            tally.problems.append(f"frame {frame}: task {a['task']} vs {b['task']}")
            continue
        comparisons = [compare for field, compare in FIELDS if field in a or field in b]
        if not comparisons:
            tally.problems.append(f"frame {frame}: a {a['task']} record with no {FIELD_NAMES} to compare")
        for compare in comparisons:
            compare(frame, a, b, tally, conf)
    summary = {"frames_reference": len(ref), "frames_device": len(dev), "frames_compared": len(common),
               "frames_device_only": len(set(dev) - set(ref)), "objects_paired": tally.pairs,
               "min_iou": _worst(tally.ious, min), "max_score_diff": _worst(tally.score_diffs, max),
               "borderline_unpaired": tally.borderline}
    if tally.areas_seen:
        summary["max_area_fraction_diff"] = _worst(tally.area_diffs, max)
    return {**summary, "problems": tally.problems[:10], "problem_count": len(tally.problems),
            "agree": bool(common) and not tally.problems}


def compare_raw(reference: dict, device: dict) -> dict:
    """Raw model outputs of the same frames (arrays read from the .npz dumps).

    fp32 outputs: the largest absolute difference over every output and frame, over
    the reference's largest magnitude, within FP32_REL_TOL (the converter's parity
    measure, converters/parity.py). Integer outputs (dequantized by the runtime):
    within one quantization step. The worst relative error of a single output is
    reported too: small-valued outputs (scores far from any object) show more there.
    The preprocessed inputs ("in<frame>") are compared in pixel levels, for the record.
    """
    fp32_diff, fp32_scale, per_output, worst_steps, problems = 0.0, 0.0, 0.0, 0.0, []
    compared, input_levels, input_changed, input_values = 0, 0.0, 0, 0
    arrays: Dict[str, List[float]] = reference["arrays"]
    for key, ref in arrays.items():
        dev = device["arrays"].get(key)
        if dev is None or len(dev) != len(ref):
            problems.append(f"{key}: missing or of another size on the device")
            continue
        if key.startswith("in"):
            input_levels = max(input_levels, max((abs(x - y) for x, y in zip(ref, dev)), default=0.0)
                               * reference.get("input_std", 1.0))
            input_changed += sum(1 for x, y in zip(ref, dev) if x != y)
            input_values += len(ref)
            continue
        compared += 1
        step = reference["steps"][int(key.rsplit("_o", 1)[1])]
        diff = max((abs(x - y) for x, y in zip(ref, dev)), default=0.0)
        if step:
            worst_steps = max(worst_steps, diff / step)
            if diff > step * (1 + 1e-6):
                problems.append(f"{key}: {diff / step:.2f} quantization steps apart")
        else:
            scale = max((abs(x) for x in ref), default=0.0)
            fp32_diff, fp32_scale = max(fp32_diff, diff), max(fp32_scale, scale)
            per_output = max(per_output, diff / scale if scale else diff)
    relative = fp32_diff / max(fp32_scale, 1e-12)
    if relative > FP32_REL_TOL:
        problems.append(f"fp32 outputs: relative error {relative:.3g} exceeds {FP32_REL_TOL:g}")
    return {"input_max_diff_levels": round(input_levels, 3),
            "input_values_differing": round(input_changed / input_values, 5) if input_values else None,
            "outputs_compared": compared, "max_abs_error_fp32": fp32_diff, "relative_error_fp32": relative,
            "worst_single_output_relative_error_fp32": per_output, "max_quantization_steps": worst_steps,
            "problems": problems[:10], "agree": bool(compared) and not problems}

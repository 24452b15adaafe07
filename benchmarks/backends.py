"""Every backend on every precision of three models, and whether `--backend auto` picks
the fastest: p50/p99 of inference alone (`Backend.infer` on a preprocessed held-out
scene) and end to end (`edgecnn run FILE --source FOLDER`, frames read as fast as they
decode), at 1 and 2 threads; auto's choice repeated with no cache beside the figures of
the same run; each int8 file scored by `edgecnn eval --backend B` against its gate; each
backend's detections against a reference backend's on the held-out scenes.

    python benchmarks/backends.py --work /work/runs/backends [--yolo /work/runs/yolo/yolo11n-640.onnx]
        [--stages prepare,infer,e2e,auto,eval,parity] [--rounds 3] [--e2e-rounds 2] [--threads 1,2]

Models (files written under --work, reused when present):
- detector: the bundled shapes_detector.tflite and -int8.tflite, its ONNX export
  (tests/data/models/shapes_detector.onnx) and an int8 ONNX: `edgecnn quantize
  shapes_detector.onnx --calib shapes --data shapes --mixed` when its gate keeps it, else
  `edgecnn convert edgecnn/assets/shapes_detector.pt --to onnx --precision int8
  --float-layers heads.0.box,heads.1.box,heads.2.box` (the box convolutions float); and,
  in variants/, 7-bit weights throughout (`--weight-bits 7 --force`);
- digits: `edgecnn convert edgecnn/assets/digits_mobilenet_v2.pt --to all --precision both`;
- yolo11n (with --yolo): an Ultralytics YOLO11n ONNX exported at 640 px (trained and
  exported in a separate benchmark-only environment: benchmarks/foreign_agreement.py
  trains it, then `YOLO(last.pt).export(format="onnx", imgsz=640, simplify=False)`),
  measured on the shapes scenes drawn at 640 px (written here as a YOLO folder), and the
  int8 files `edgecnn quantize` writes from it: its default (8-bit weights, beside it as
  NAME-int8.onnx, auto's sibling) and, in variants/, 7-bit weights with the most
  sensitive convolutions at 8 bits (`--weight-bits 7 --mixed`) and 7 bits throughout
  (`--weight-bits 7 --force`).

Every timing alternates the configurations round by round (the machine is shared: its
speed drifts within minutes, and falls on every configuration of a round alike), loads
one model at a time, and records the load average. Results go to WORK/backends.json and
a Markdown summary to stdout.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from backend_parity import CPU_FLAGS, cpu_description  # noqa: E402
from box_agreement import BoxAgreement  # noqa: E402

from edgecnn.assets import DIGITS_CLASSIFIER, RUNTIME_FP32, RUNTIME_INT8, SHAPES_DETECTOR  # noqa: E402

DETECTOR_ONNX = ROOT / "tests" / "data" / "models" / "shapes_detector.onnx"
WARMUP = 5
YOLO_SIZE = 640


def cli(*args, env: Optional[dict] = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise SystemExit(f"edgecnn {' '.join(map(str, args))} failed ({result.returncode}): "
                         f"{result.stderr.strip()[-2000:]}")
    return result


def load_text() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


# ---------------------------------------------------------------- files

def scene_folder(root: Path, size: int, train: int = 0) -> Path:
    """The 300 held-out shapes scenes (and `train` training scenes for calibration) drawn
    at `size` px, as a YOLO folder: the data and the source of the end-to-end runs."""
    from edgecnn.data.detection import load_shapes_detection, write_yolo

    if not (root / "images" / "val").is_dir():
        write_yolo(load_shapes_detection("val", size=size), str(root), "val")
        if train:
            write_yolo(load_shapes_detection("train", size=size, count=train), str(root), "train")
    return root


def prepare_detector(work: Path) -> Dict:
    folder = work / "detector"
    folder.mkdir(parents=True, exist_ok=True)
    for source in (RUNTIME_FP32, RUNTIME_INT8, DETECTOR_ONNX):
        if not (folder / source.name).is_file():
            shutil.copy(source, folder / source.name)
    int8 = folder / "shapes_detector-int8.onnx"
    log = {}
    if not int8.is_file():
        result = cli("quantize", folder / "shapes_detector.onnx", "--calib", "shapes", "--data", "shapes", "--out",
                     int8, "--mixed", check=False)
        log["quantize"] = {"exit": result.returncode, "stderr": result.stderr.strip().splitlines()[-12:]}
        print("\n".join(log["quantize"]["stderr"]), file=sys.stderr)
    if not int8.is_file():  # refused: edgecnn's own route for its checkpoint, the box convolutions float
        with tempfile.TemporaryDirectory() as tmp:
            result = cli("convert", SHAPES_DETECTOR, "--to", "onnx", "--precision", "int8", "--float-layers",
                         "heads.0.box,heads.1.box,heads.2.box", "--out", tmp, check=False)
            log["convert"] = {"exit": result.returncode, "stderr": result.stderr.strip().splitlines()[-6:]}
            written = Path(tmp) / "shapes_detector-int8.onnx"
            if written.is_file():
                shutil.copy(written, int8)
    files = {"fp32 TFLite": str(folder / "shapes_detector.tflite"),
             "int8 TFLite": str(folder / "shapes_detector-int8.tflite"),
             "fp32 ONNX": str(folder / "shapes_detector.onnx")}
    if int8.is_file():  # refused by the gate: not there
        files["int8 ONNX"] = str(int8)
    # 7-bit weights throughout (not auto's sibling): onnxruntime's fast kernel cannot saturate on them
    seven = folder / "variants" / "shapes_detector-w7.onnx"
    if not seven.is_file():
        seven.parent.mkdir(exist_ok=True)
        result = cli("quantize", folder / "shapes_detector.onnx", "--calib", "shapes", "--data", "shapes", "--out",
                     seven, "--weight-bits", "7", "--force", check=False)
        log["quantize 7-bit"] = {"exit": result.returncode, "stderr": result.stderr.strip().splitlines()[-12:]}
    if seven.is_file():
        files["int8 ONNX (7-bit weights)"] = str(seven)
    scenes = scene_folder(work / "scenes192", 192) / "images" / "val"
    return {"name": "detector", "data": "shapes", "source": str(scenes),
            "named": [str(folder / "shapes_detector.tflite"), str(folder / "shapes_detector.onnx")],
            "files": files, "quantize": log}


def prepare_digits(work: Path) -> Dict:
    folder = work / "digits"
    stem = DIGITS_CLASSIFIER.stem
    if not (folder / f"{stem}-int8.onnx").is_file():
        cli("convert", DIGITS_CLASSIFIER, "--to", "all", "--precision", "both", "--out", folder)
    return {"name": "digits", "data": "digits", "source": str(scene_folder(work / "scenes192", 192) / "images" / "val"),
            "named": [str(folder / f"{stem}-fp32.tflite"), str(folder / f"{stem}-fp32.onnx")],
            "files": {"fp32 TFLite": str(folder / f"{stem}-fp32.tflite"),
                      "int8 TFLite": str(folder / f"{stem}-int8.tflite"),
                      "fp32 ONNX": str(folder / f"{stem}-fp32.onnx"), "int8 ONNX": str(folder / f"{stem}-int8.onnx")}}


def prepare_yolo(work: Path, fp32: Path) -> Dict:
    """int8 files of the YOLO: the default (beside it, auto's sibling) and variants."""
    data = scene_folder(work / f"scenes{YOLO_SIZE}", YOLO_SIZE, train=256)
    calib = data / "images" / "train"
    folder = fp32.parent
    variants = folder / "variants"
    variants.mkdir(exist_ok=True)
    stem = fp32.stem
    runs = {"int8 ONNX (8-bit weights)": (folder / f"{stem}-int8.onnx", []),
            "int8 ONNX (7-bit, sensitive 8-bit)": (variants / f"{stem}-w7mixed.onnx",
                                                   ["--weight-bits", "7", "--mixed"]),
            "int8 ONNX (7-bit weights)": (variants / f"{stem}-w7.onnx", ["--weight-bits", "7", "--force"])}
    log = {}
    for label, (out, options) in runs.items():
        if not out.is_file():
            result = cli("quantize", fp32, "--calib", calib, "--data", data, "--out", out, *options, check=False)
            log[label] = {"exit": result.returncode, "stderr": result.stderr.strip().splitlines()[-12:]}
            print(f"{label}: exit {result.returncode}\n" + "\n".join(log[label]["stderr"]), file=sys.stderr)
    files = {"fp32 ONNX": str(fp32)}
    files.update({label: str(out) for label, (out, _) in runs.items() if out.is_file()})
    named = [str(fp32)]
    mixed = runs["int8 ONNX (7-bit, sensitive 8-bit)"][0]
    if mixed.is_file():  # what `quantize yolo11n.onnx --weight-bits 7 --mixed` writes as the sibling
        beside = work / f"{stem}-w7"
        beside.mkdir(exist_ok=True)
        for link, target in ((beside / fp32.name, fp32), (beside / f"{stem}-int8.onnx", mixed)):
            if not link.is_symlink():
                link.symlink_to(target)
        named.append(str(beside / fp32.name))
    return {"name": "yolo11n", "data": str(data), "source": str(data / "images" / "val"), "named": named,
            "files": files, "quantize": log, "e2e_frames": 100}


# ---------------------------------------------------------------- configurations

def configurations(family: Dict) -> List[Tuple[str, str, str]]:
    """(file label, path, backend) for every installed backend that runs each file, with
    its default options (what auto can choose), and for int8 files the engines' own int8
    kernels where the default on this CPU replaces them (rows auto never picks)."""
    from edgecnn.runtime.backends import backends_for

    rows = []
    for label, path in family["files"].items():
        for backend in backends_for(path):
            rows.append((label, path, backend))
            if label.startswith("int8") and backend in ("onnxruntime", "openvino"):
                rows.append((label, path, f"{backend}:exact_int8=off"))
    return rows


def auto_candidates(family: Dict) -> Dict[str, List[Tuple[str, str]]]:
    """For each file a user names: the (path, backend) pairs auto times for it."""
    from edgecnn.runtime.backends import backends_for
    from edgecnn.runtime.bundled import precision_siblings

    return {named: [(str(path), backend) for path in precision_siblings(Path(named))
                    for backend in backends_for(str(path))] for named in family["named"]}


def infer_rounds(families: List[Dict], threads: Sequence[int], rounds: int, runs: int,
                 auto_each_round=None) -> Dict[str, Dict]:
    """p50/p99 ms of Backend.infer per (family, file, backend, threads), on one held-out
    image preprocessed as the runtime does (Model.preprocess): every
    configuration once per round, one model loaded at a time, `runs` timed calls after
    WARMUP; `auto_each_round(r)` runs between rounds (auto's choice beside the figures)."""
    import cv2

    import edgecnn
    from edgecnn.runtime.backends import timed_runs

    times: Dict[str, List[List[float]]] = {}
    for r in range(rounds):
        for family in families:
            image = cv2.imread(str(sorted(Path(family["source"]).iterdir())[0]))[:, :, ::-1]
            for label, path, backend in configurations(family):
                for t in threads:
                    model = edgecnn.load(path, backend=backend, threads=t, log=None)  # the card's preprocessing
                    blob = model.preprocess(image)
                    timed_runs(model.backend.infer, blob, WARMUP)
                    key = json.dumps([family["name"], label, backend, t])
                    times.setdefault(key, []).append(timed_runs(model.backend.infer, blob, family.get("runs", runs)))
                    del model
                    gc.collect()
        print(f"infer round {r + 1}/{rounds} done, load {load_text()}", file=sys.stderr, flush=True)
        if auto_each_round is not None:
            auto_each_round(r)
    table = {}
    for key, per_round in times.items():
        flat = np.concatenate(per_round)
        table[key] = {"p50": float(np.percentile(flat, 50)), "p99": float(np.percentile(flat, 99)),
                      "round_p50": [float(np.median(x)) for x in per_round]}
    return table


SUMMARY = re.compile(r"summary: (\d+) frames, ([\d.]+) FPS")


def e2e_rounds(families: List[Dict], threads: Sequence[int], rounds: int) -> Dict[str, Dict]:
    """`edgecnn run FILE --backend B --threads T --source FOLDER --json OUT`, each
    configuration once per round, plus `--backend auto` with an empty choice cache: FPS
    from the summary, p50/p99 of frame age (read to result) and inference from the records."""
    results: Dict[str, Dict] = {}
    for r in range(rounds):
        for family in families:
            # the engines' own int8 kernels (exact_int8=off) are timed above; auto never runs them
            rows = [(label, path, backend) for label, path, backend in configurations(family)
                    if "exact_int8=off" not in backend]
            rows += [(f"auto on {shown(named)}", named, "auto") for named in family["named"]]
            for label, path, backend in rows:
                for t in threads:
                    with tempfile.TemporaryDirectory() as tmp:
                        out = Path(tmp) / "records.jsonl"
                        args = ["run", path, "--backend", backend, "--threads", t, "--source", family["source"],
                                "--json", out]
                        if family.get("e2e_frames"):
                            args += ["--max-frames", family["e2e_frames"]]
                        result = cli(*args, env={"XDG_CACHE_HOME": str(Path(tmp) / "cache")})
                        records = [json.loads(line) for line in out.read_text().splitlines()]
                    frames = [rec for rec in records if rec.get("type") == "frame"]
                    summary = SUMMARY.search(result.stderr)
                    chose = re.search(r"backend auto: (.*?) \(", result.stderr)
                    entry = results.setdefault(json.dumps([family["name"], label, backend, t]),
                                               {"fps": [], "age": [], "inference": [], "chose": []})
                    entry["fps"].append(float(summary.group(2)))
                    entry["age"] += [rec["frame_age_ms"] for rec in frames]
                    entry["inference"] += [rec["inference_ms"] for rec in frames]
                    if chose:
                        entry["chose"].append(chose.group(1))
        print(f"e2e round {r + 1}/{rounds} done, load {load_text()}", file=sys.stderr, flush=True)
    return {key: {"fps": float(np.median(v["fps"])), "fps_rounds": v["fps"],
                  "age_p50": float(np.percentile(v["age"], 50)), "age_p99": float(np.percentile(v["age"], 99)),
                  "inference_p50": float(np.percentile(v["inference"], 50)),
                  "inference_p99": float(np.percentile(v["inference"], 99)), "chose": v["chose"]}
            for key, v in results.items()}


def auto_choice(families: List[Dict], threads: Sequence[int], choices: Dict[str, List]):
    """One round of auto's choice for every named file and thread count, no cache."""
    from edgecnn.runtime.bundled import choose_run, precision_siblings

    def run(r: int) -> None:
        for family in families:
            for named in family["named"]:
                for t in threads:
                    path, backend, why = choose_run(precision_siblings(Path(named)), "auto", t, log=lambda _: None,
                                                    use_cache=False, prefix="backend auto", required=Path(named))
                    choices.setdefault(json.dumps([family["name"], named, t]), []).append(
                        {"round": r, "path": path, "backend": backend, "why": why})

    return run


def shown(named: str) -> str:
    """A named file as its folder and name (two families' files may share a name)."""
    return f"{Path(named).parent.name}/{Path(named).name}"


def label_of(family: Dict, path: str) -> str:
    return next(label for label, p in family["files"].items() if Path(p).resolve() == Path(path).resolve())


def judge_auto(families: List[Dict], table: Dict, choices: Dict) -> List[Dict]:
    """Each choice against the fastest of auto's own candidates in the table (and the
    fastest configuration of the model overall, any file, format or option)."""
    verdicts = []
    for family in families:
        candidates = auto_candidates(family)
        for named in family["named"]:
            for key, picks in choices.items():
                name, chosen_for, t = json.loads(key)
                if name != family["name"] or chosen_for != named:
                    continue
                p50 = {(label_of(family, path), backend): table[json.dumps([name, label_of(family, path), backend, t])]
                       ["p50"] for path, backend in candidates[named]}
                best = min(p50, key=p50.get)
                overall = {tuple(json.loads(k)[1:3]): v["p50"] for k, v in table.items()
                           if json.loads(k)[0] == name and json.loads(k)[3] == t}
                fastest = min(overall, key=overall.get)
                for pick in picks:
                    picked = (label_of(family, pick["path"]), pick["backend"])
                    verdicts.append({"model": name, "named": shown(named), "threads": t, "round": pick["round"],
                                     "picked": picked, "picked_p50": p50[picked], "best": best,
                                     "best_p50": p50[best], "ratio": p50[picked] / p50[best],
                                     "fastest_overall": fastest, "fastest_overall_p50": overall[fastest]})
    return verdicts


# ---------------------------------------------------------------- accuracy

def eval_rows(families: List[Dict]) -> List[Dict]:
    """`edgecnn eval FILE --data D --backend B` for every configuration, and the gate:
    the drop from the card's fp32 figure within the card's budget."""
    from edgecnn.runtime.model_file import read_card

    rows = []
    for family in families:
        for label, path, backend in configurations(family):
            result = cli("eval", path, "--data", family["data"], "--backend", backend, "--json", "--plot", "")
            report = json.loads(result.stdout)
            card = read_card(path)  # None: a file without edgecnn's card (another toolkit's fp32 export)
            metrics = card.metrics if card is not None else {}
            metric = next((k[len("fp32_"):] for k in metrics if k.startswith("fp32_")), None) \
                or ("map50_95" if "map50_95" in report else "top1")
            reference = metrics.get(f"fp32_{metric}", metrics.get(metric))
            budget = metrics.get("max_drop_points", metrics.get("max_drop"))
            drop = 100 * (reference - report[metric]) if reference is not None else None
            rows.append({"model": family["name"], "file": label, "backend": backend, "metric": metric,
                         "value": report[metric], "card_fp32": reference, "drop": drop, "budget": budget,
                         "passes": None if card is None or card.precision == "fp32" or drop is None or budget is None
                         else drop <= float(budget)})
            print(f"eval {family['name']} {label} {backend}: {metric} {100 * report[metric]:.2f}", file=sys.stderr,
                  flush=True)
    return rows


def parity_rows(families: List[Dict], scenes: int) -> List[Dict]:
    """Detections (conf 0.25) of every configuration against a reference: LiteRT on the
    TFLite file of the same precision for TFLite files and for the detector's fp32 ONNX
    file (the same float arithmetic), else onnxruntime (its default kernels here) on the
    same ONNX file."""
    import cv2

    import edgecnn

    rows = []
    for family in families:
        if family["name"] == "digits":
            continue
        images = [cv2.imread(str(p))[:, :, ::-1] for p in sorted(Path(family["source"]).iterdir())[:scenes]]

        def detect(path, backend):
            model = edgecnn.load(path, backend=backend, threads=2, log=None)
            return [model.predict(image) for image in images]

        references = {}
        for label, path, backend in configurations(family):
            if "TFLite" in label:
                ref_key = (label, "litert")
            elif label == "fp32 ONNX" and "fp32 TFLite" in family["files"]:
                ref_key = ("fp32 TFLite", "litert")
            else:
                ref_key = (label, "onnxruntime")
            if ref_key not in references:
                references[ref_key] = detect(family["files"][ref_key[0]], ref_key[1])
            found = detect(path, backend)
            tally = BoxAgreement()
            for mine, theirs in zip(found, references[ref_key]):
                tally.add(mine, theirs.boxes, theirs.scores, theirs.classes)
            result = tally.result()
            rows.append({"model": family["name"], "file": label, "backend": backend, "reference": " on ".join(ref_key),
                         **result, "share": result["agreeing"] / result["boxes"] if result["boxes"] else 1.0})
            print(f"parity {family['name']} {label} {backend}: {rows[-1]['share']:.3f}", file=sys.stderr, flush=True)
    return rows


# ---------------------------------------------------------------- report

def table(title: str, columns: Sequence[str], align: str, rows: List[Sequence]) -> List[str]:
    """A titled Markdown table; `align` has an l (left) or r (right) per column."""
    rule = "|".join("---:" if side == "r" else "---" for side in align)
    return ["", title, "", "| " + " | ".join(columns) + " |", f"|{rule}|",
            *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]


def markdown(results: Dict) -> str:
    lines = [f"CPU: {results['cpu']}, {os.cpu_count()} cores; flags: {', '.join(results['flags'])}",
             f"Load average: at the start {results['load_start']}, at the end {results.get('load_end')}"]
    threads = results["threads"]
    if "infer" in results:
        rows = []
        for name, label, backend in dict.fromkeys(tuple(json.loads(k)[:3]) for k in results["infer"]):
            cells = [results["infer"].get(json.dumps([name, label, backend, t])) for t in threads]
            rows.append([name, label, backend, *(f"{c[q]:.2f}" if c else "-" for c in cells for q in ("p50", "p99"))])
        columns = ["model", "file", "backend", *(f"{q} t{t}" for t in threads for q in ("p50", "p99"))]
        lines += table("Inference alone (ms):", columns, "lll" + "rr" * len(threads), rows)
    if "e2e" in results:
        rows = [[*json.loads(key), f"{v['fps']:.1f}", f"{v['age_p50']:.1f}", f"{v['age_p99']:.1f}",
                 f"{v['inference_p50']:.2f}", f"{v['inference_p99']:.2f}", "; ".join(sorted(set(v["chose"])))]
                for key, v in results["e2e"].items()]
        lines += table("End to end, `edgecnn run` (FPS; frame age and inference ms):",
                       ["model", "file", "backend", "threads", "FPS", "age p50", "age p99", "inference p50",
                        "inference p99", "chose"], "lllrrrrrrl", rows)
    if "auto" in results:
        rows = [[v["model"], v["named"], v["threads"], v["round"] + 1, " on ".join(v["picked"]),
                 f"{v['picked_p50']:.2f}", " on ".join(v["best"]), f"{v['best_p50']:.2f}", f"{v['ratio']:.3f}",
                 f"{' on '.join(v['fastest_overall'])} {v['fastest_overall_p50']:.2f}"] for v in results["auto"]]
        lines += table("Auto's choice (no cache) against the table of the same run:",
                       ["model", "named", "threads", "round", "picked", "p50", "best candidate", "p50", "ratio",
                        "fastest overall"], "llrrlrlrrl", rows)
    if "eval" in results:
        rows = [[v["model"], v["file"], v["backend"], v["metric"], f"{100 * v['value']:.2f}",
                 "-" if v["card_fp32"] is None else f"{100 * v['card_fp32']:.2f}",
                 "-" if v["drop"] is None else f"{v['drop']:.2f}", v["budget"],
                 "-" if v["passes"] is None else ("passes" if v["passes"] else "**fails**")] for v in results["eval"]]
        lines += table("Accuracy per backend (`edgecnn eval --backend`):",
                       ["model", "file", "backend", "metric", "value", "card fp32", "drop", "budget", "gate"],
                       "llllrrrrl", rows)
    if "parity" in results:
        rows = [[v["model"], v["file"], v["backend"], v["reference"], v["boxes"], f"{100 * v['share']:.1f}%",
                 v["unmatched"], f"{v['min_iou']:.3f}", f"{v['max_score_difference']:.3f}"] for v in results["parity"]]
        lines += table("Detections against the reference backend's (IoU >= 0.99, score within 0.01):",
                       ["model", "file", "backend", "reference", "boxes", "agree", "unpartnered", "min IoU",
                        "max score diff"], "llllrrrrr", rows)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="runs/backends")
    parser.add_argument("--yolo", default=None, help="a YOLO11n ONNX exported at 640 px (see the docstring)")
    parser.add_argument("--models", default="detector,digits,yolo11n")
    parser.add_argument("--stages", default="prepare,infer,e2e,auto,eval,parity")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--e2e-rounds", type=int, default=2, help="rounds of the end-to-end runs")
    parser.add_argument("--runs", type=int, default=60, help="timed inferences per configuration and round")
    parser.add_argument("--yolo-runs", type=int, default=15, help="the same for the YOLO at 640 px")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--parity-scenes", type=int, default=300)
    args = parser.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    stages, wanted = set(args.stages.split(",")), set(args.models.split(","))
    threads = [int(t) for t in args.threads.split(",")]
    cpu, flags = cpu_description()
    results_path = work / "backends.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    results.update(cpu=cpu, flags=flags, threads=threads, load_start=load_text(), command=" ".join(sys.argv),
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   commit=subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                         text=True).stdout.strip())
    print(f"CPU {cpu}; flags {', '.join(flags) or 'none of ' + ', '.join(CPU_FLAGS)}; load {load_text()}",
          file=sys.stderr)

    def save():
        results_path.write_text(json.dumps(results, indent=1, default=str))

    families = []
    if "detector" in wanted:
        families.append(prepare_detector(work))
    if "digits" in wanted:
        families.append(prepare_digits(work))
    if "yolo11n" in wanted and args.yolo:
        families.append(dict(prepare_yolo(work, Path(args.yolo).resolve()), runs=args.yolo_runs))
    results["families"] = families
    save()
    choices: Dict[str, List] = {}
    if "infer" in stages:
        results["infer"] = infer_rounds(families, threads, args.rounds, args.runs,
                                        auto_choice(families, threads, choices) if "auto" in stages else None)
        if "auto" in stages:
            results["auto"] = judge_auto(families, results["infer"], choices)
        save()
    if "e2e" in stages:
        results["e2e"] = e2e_rounds(families, threads, args.e2e_rounds)
        save()
    if "eval" in stages:
        results["eval"] = eval_rows(families)
        save()
    if "parity" in stages:
        results["parity"] = parity_rows(families, args.parity_scenes)
        save()
    results["load_end"] = load_text()
    save()
    print(markdown(results))


if __name__ == "__main__":
    main()

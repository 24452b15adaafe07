"""Pruning recipes measured through the project's own commands: one-shot against
iterative pruning, fine-tuning on the labels against distillation from the unpruned
model, each pruned model's speed as int8 TFLite and ONNX files.

    python benchmarks/prune_recipes.py digits [--folds 0,1,2] [--epochs 5] [--out runs/prune-recipes]
    python benchmarks/prune_recipes.py detect [--teacher CKPT] [--epochs 5]
    python benchmarks/prune_recipes.py segment --teacher CKPT [--epochs 10] [--lr 0.02]
    python benchmarks/prune_recipes.py latency [--teacher CKPT] [--speedup 1.5]
    python benchmarks/prune_recipes.py report [--out runs/prune-recipes]

`digits` measures the MobileNetV2-0.5 digits classifier on held-out folds of the 5000
real digits (`digits?fold=K`: every 5th column of the sheet, starting at column K, is
held out). Each fold gets its own unpruned model, trained with the bundled model's
recipe on the other four fifths (fold 4 is the bundled model's split, on which the
pruning defaults were chosen; folds 0-3 were not used to choose anything). Every
experiment runs the same `edgecnn prune --target-macs 0.5` with the same seed in several
variants: one-shot or iterative (`--steps`), on the labels (`--distill off`) or
distilled (from the outputs, `logits`, or also the feature maps' attention,
`features`); each with `--force` so that a result beyond the budget is still measured
(its summary says whether the gate passed). Then the unpruned model and the pruned
model of the recipe (`--speed-variant`) are converted to int8 TFLite and int8 ONNX
(`edgecnn convert --precision int8`, through the converter's gate), timed with
`edgecnn bench` in several rounds, each configuration's median round kept, and put in
`edgecnn bench report`'s Pareto table. `latency` prunes to a latency target: the
unpruned model's int8 TFLite time over --speedup, as `edgecnn prune` measures it.

The shapes detector and segmenter are also evaluated, unpruned and pruned, on the
synthetic shapes' test split: scenes drawn apart from the val split that the gate, the
fine-tuning's validation and the choice of recipes saw, so a recipe picked as the best
of several on val is checked on images it was not picked on (`test` in the summary).

Results: OUT/<experiment>/summary.json (kept between runs: a variant measured before is
not run again), printed as Markdown tables by `report`, with the machine's CPU flags,
the date, the commit and the command.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
DIGITS_TEACHER = ["--task", "classify", "--model", "mobilenet_v2", "--width", "0.5", "--imgsz", "80",
                  "--epochs", "40", "--batch", "32", "--optimizer", "sgd", "--lr", "0.05", "--seed", "0"]
VARIANTS = {  # name -> (rounds of pruning (None: --steps), distillation)
    "one-shot-labels": (1, "off"),
    "one-shot-distilled": (1, "logits"),
    "iterative-labels": (None, "off"),
    "iterative-distilled": (None, "logits"),
    "one-shot-features": (1, "features"),
    "iterative-features": (None, "features"),
}
BACKENDS = {"tflite": "litert", "onnx": "onnxruntime"}  # each int8 file on its own runtime
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "fma", "f16c")


def edgecnn(*args: Any) -> str:
    result = subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], capture_output=True, text=True,
                            cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"edgecnn {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def machine() -> Dict[str, Any]:
    """What a figure was measured on and with: CPU flags that decide int8 speed, date, commit, command."""
    flags = set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags.update(line.split(":", 1)[1].split())
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    paths = ["edgecnn/compress", "edgecnn/training", "edgecnn/tasks", "edgecnn/models", "edgecnn/data", "converters",
             "edgecnn/bench", "benchmarks/prune_recipes.py"]  # what pruning, conversion and timing run through
    dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], capture_output=True, text=True,
                           cwd=ROOT).stdout.strip()
    return {"date": subprocess.run(["date"], capture_output=True, text=True).stdout.strip(),
            "commit": commit.stdout.strip() + (" (with uncommitted changes)" if dirty else ""),
            "cpu_flags": [flag for flag in FLAGS if flag in flags], "cores": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "command": " ".join([Path(sys.executable).name, *sys.argv])}


class Experiment:
    """One model's variants and files, saved after every step so that a long run resumes."""

    def __init__(self, out: Path, name: str) -> None:
        self.dir = out / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "summary.json"
        self.summary: Dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.summary.setdefault("name", name)
        self.summary.setdefault("variants", {})
        self.summary.setdefault("runs", [])

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.summary, indent=1))
        os.replace(tmp, self.path)

    def prune(self, teacher: Path, args: argparse.Namespace, extra: List[str]) -> None:
        for name in args.variants.split(","):
            rounds, distill = VARIANTS[name]
            if name in self.summary["variants"]:
                measured = self.summary["variants"][name]
                if self.summary.get("data") == "shapes" and "test" not in measured:  # measured before the check
                    measured["test"] = self.test_split(teacher, Path(measured["checkpoint"]))
                    self.save()
                continue
            steps = rounds or args.steps
            out = self.dir / f"{name}.pt"
            recipe = ["--distill-weight", args.distill_weight] if args.distill_weight and distill != "off" else []
            recipe += named_recipe(args)
            command = ["prune", teacher, "--target-macs", args.target_macs, "--epochs", args.epochs, "--steps", steps,
                       "--distill", distill, *recipe, "--seed", args.seed, "--threads", args.threads, "--force",
                       "--json", "--out", out, *extra]
            print(f"{self.summary['name']}: {name}: edgecnn {' '.join(map(str, command))}", flush=True)
            started = time.perf_counter()
            report = json.loads(edgecnn(*command))
            report["wall_s"] = time.perf_counter() - started
            report["command"] = "edgecnn " + " ".join(map(str, command))
            report["checkpoint"] = str(out)
            if self.summary.get("data") == "shapes":
                report["test"] = self.test_split(teacher, out)
            self.summary["variants"][name] = report
            self.summary["runs"].append(machine())
            self.save()
            print(f"  drop {report['gate']['drop']:+.2f} points ({'passed' if report['gate']['passed'] else 'beyond'} "
                  f"the budget), MACs {100 * report['macs_ratio']:.1f}%, {report['wall_s']:.0f} s", flush=True)

    def test_split(self, teacher: Path, pruned: Path) -> Dict[str, Any]:
        """The unpruned and pruned models' metric on the test split, and the drop."""
        scores = self.summary.setdefault("test_split", {})
        for path in (teacher, pruned):
            if str(path) not in scores:
                scores[str(path)] = json.loads(edgecnn("eval", path, "--split", "test", "--json", "--plot", ""))
        metric = "map50_95" if "map50_95" in scores[str(teacher)] else "miou"
        before, after = scores[str(teacher)][metric], scores[str(pruned)][metric]
        return {"metric": metric, "before": before, "after": after, "drop": 100 * (before - after),
                "images": scores[str(pruned)]["images"]}

    def speed(self, teacher: Path, args: argparse.Namespace, convert_extra: List[str]) -> None:
        """int8 TFLite and ONNX files of the unpruned model and of the recipe's pruned
        model, through the converter's gate, timed with the bench in rounds."""
        pruned = Path(self.summary["variants"][args.speed_variant]["checkpoint"])
        files = self.summary.setdefault("files", {})
        for label, source in (("unpruned", teacher), ("pruned", pruned)):
            if label in files:
                continue
            reports = json.loads(edgecnn("convert", source, "--to", "all", "--precision", "int8", "--force", "--json",
                                         "--out", self.dir / f"files-{label}", *convert_extra))
            files[label] = [{"file": r["file"], "format": Path(r["file"]).suffix[1:], "gate": r.get("gate")}
                            for r in reports]
            self.save()
        bench = self.dir / "bench.jsonl"
        if not bench.exists():
            for _ in range(args.rounds):
                for fmt, backend in BACKENDS.items():
                    paths = [f["file"] for label in ("unpruned", "pruned") for f in files[label] if f["format"] == fmt]
                    edgecnn("bench", *paths, "--backend", backend, "--threads", args.threads, "--runs", args.runs,
                            "--warmup", "100", "--json", bench)
            edgecnn("bench", "report", bench, "--out", self.dir / "report")
        records = [json.loads(line) for line in bench.read_text().splitlines() if line.strip()]
        latency = {}
        for label in ("unpruned", "pruned"):
            for f in files[label]:
                runs = [r["latency_ms"]["p50"] for r in records if r.get("status") == "ok" and
                        os.path.realpath(r["model_path"]) == os.path.realpath(f["file"])]
                latency[f"{label} {f['format']}"] = {"p50_ms_per_round": runs, "p50_ms": statistics.median(runs)}
        self.summary["latency"] = latency
        self.summary["speed_variant"] = args.speed_variant
        self.summary["speed_machine"] = machine()
        self.save()


def named_recipe(args: argparse.Namespace) -> List[str]:
    """The prune options given on this command line, passed on (prune's defaults, the
    task's, for the rest)."""
    named = (("--lr", args.lr), ("--optimizer", args.optimizer), ("--weight-decay", args.weight_decay),
             ("--importance", args.importance), ("--scope", args.scope), ("--batch", args.batch))
    return [str(item) for flag, value in named if value for item in (flag, value)]


def digits(args: argparse.Namespace) -> None:
    for fold in [int(k) for k in args.folds.split(",")]:
        experiment = Experiment(Path(args.out), f"{args.name or 'digits'}-fold{fold}")
        data = "digits" if fold == 4 else f"digits?fold={fold}"
        if fold == 4:
            teacher = ROOT / "edgecnn" / "assets" / "digits_mobilenet_v2.pt"
        else:
            teacher = Path(args.out) / f"digits-teacher-fold{fold}" / "last.pt"  # shared by the experiments
            if not teacher.exists():
                print(f"digits fold {fold}: training its unpruned model", flush=True)
                started = time.perf_counter()
                edgecnn("train", *DIGITS_TEACHER, "--data", data, "--out", teacher.parent, "--json")
                experiment.summary["teacher_training_s"] = time.perf_counter() - started
        experiment.summary.update(teacher=str(teacher), data=data)
        experiment.save()
        experiment.prune(teacher, args, [])
        if not args.no_speed:
            experiment.speed(teacher, args, [])


def detect(args: argparse.Namespace) -> None:
    experiment = Experiment(Path(args.out), args.name or "detect")
    teacher = Path(args.teacher or ROOT / "edgecnn" / "assets" / "shapes_detector.pt").resolve()
    experiment.summary.update(teacher=str(teacher), data="shapes")
    experiment.prune(teacher, args, [] if args.batch else ["--batch", "16"])
    if not args.no_speed:
        # the box convs stay float in the detector's int8 files (RESULTS: int8 box outputs cost 2 points)
        experiment.speed(teacher, args, ["--float-layers", "heads.0.box,heads.1.box,heads.2.box"])


def segment(args: argparse.Namespace) -> None:
    if not args.teacher:
        raise SystemExit("segment needs --teacher: a trained segmenter checkpoint")
    experiment = Experiment(Path(args.out), args.name or "segment")
    teacher = Path(args.teacher).resolve()
    experiment.summary.update(teacher=str(teacher), data="shapes")
    experiment.prune(teacher, args, [] if args.batch else ["--batch", "16"])
    if not args.no_speed:
        experiment.speed(teacher, args, [])


def latency(args: argparse.Namespace) -> None:
    """A latency target on the file that will run: the unpruned model's int8 TFLite file
    timed as prune times it (median of three), the target that over --speedup, then
    `edgecnn prune --target-latency-ms` with the distilled recipe."""
    sys.path.insert(0, str(ROOT))
    from converters.latency import DeployedLatency
    from edgecnn.training.checkpoint import load_model

    teacher = Path(args.teacher or ROOT / "edgecnn" / "assets" / "digits_mobilenet_v2.pt").resolve()
    experiment = Experiment(Path(args.out), args.name or "latency")
    if "target" not in experiment.summary:
        model, card, _ = load_model(teacher)
        meter = DeployedLatency("tflite-int8")
        unpruned = statistics.median(meter(model, card, args.threads) for _ in range(3))
        experiment.summary.update(teacher=str(teacher), unpruned_ms=unpruned, speedup=args.speedup,
                                  target=unpruned / args.speedup, data=card.metrics.get("dataset"))
        experiment.save()
    name = f"latency-{args.speedup:g}x"
    if name not in experiment.summary["variants"]:
        out = experiment.dir / f"{name}.pt"
        command = ["prune", teacher, "--target-latency-ms", f"{experiment.summary['target']:.4f}", "--latency-on",
                   "tflite-int8", "--epochs", args.epochs, "--steps", args.steps, "--seed", args.seed, "--threads",
                   args.threads, "--force", "--json", "--out", out, *named_recipe(args)]
        started = time.perf_counter()
        report = json.loads(edgecnn(*command))
        report.update(wall_s=time.perf_counter() - started, command="edgecnn " + " ".join(map(str, command)),
                      checkpoint=str(out))
        if experiment.summary.get("data") == "shapes":
            report["test"] = experiment.test_split(teacher, out)
        experiment.summary["variants"][name] = report
        experiment.summary["runs"].append(machine())
        experiment.save()
    report = experiment.summary["variants"][name]
    print(f"unpruned int8 TFLite {experiment.summary['unpruned_ms']:.3f} ms, target {experiment.summary['target']:.3f} "
          f"ms; pruned to {100 * report['macs_ratio']:.1f}% of the MACs: before {report['before']['latency_ms']:.3f} "
          f"ms, after {report['after']['latency_ms']:.3f} ms (met: {report['target_latency_met']}), "
          f"{report['gate']['metric']} drop {report['gate']['drop']:+.2f}")


def report(args: argparse.Namespace) -> None:
    for path in sorted(Path(args.out).glob("*/summary.json")):
        summary = json.loads(path.read_text())
        variants = summary["variants"]
        if not variants:
            continue
        first = next(iter(variants.values()))
        print(f"\n### {summary['name']} ({summary.get('data')}; unpruned {first['gate']['metric']} "
              f"{100 * first['gate']['before']:.2f})\n")
        print("| variant | rounds x epochs | pruned metric | drop (points) | gate at 1.0 | MACs kept | "
              "test split: before, after, drop | prune wall s |")
        print("|---|---|---|---|---|---|---|---|")
        for name, v in variants.items():
            rounds = "+".join(str(r["epochs"]) for r in v.get("rounds", []))
            print(f"| {name} | {len(v.get('rounds', []))} x ({rounds}) | {100 * v['gate']['after']:.2f} | "
                  f"{v['gate']['drop']:+.2f} | {'passed' if v['gate']['drop'] <= 1.0 else 'refused'} | "
                  f"{100 * v['macs_ratio']:.1f}% | {tested(v.get('test'))} | {v['wall_s']:.0f} |")
        latency = summary.get("latency")
        if latency:
            rounds = len(latency["unpruned tflite"]["p50_ms_per_round"])
            print(f"\nspeed ({summary['speed_variant']}; p50 ms, median of {rounds} bench rounds):\n")
            print("| file | unpruned ms | pruned ms | speed-up |")
            print("|---|---|---|---|")
            for fmt in BACKENDS:
                before, after = latency[f"unpruned {fmt}"]["p50_ms"], latency[f"pruned {fmt}"]["p50_ms"]
                print(f"| int8 {fmt} | {before:.3f} | {after:.3f} | {before / after:.2f}x |")
        runs = summary.get("runs", [])
        if runs:
            print(f"\nmeasured: {runs[0]['date']} to {runs[-1]['date']}, commit {runs[-1]['commit']}, CPU flags "
                  f"{', '.join(runs[-1]['cpu_flags'])}, OMP_NUM_THREADS={runs[-1]['omp_num_threads']}")
            print(f"commands: {first['command']}")


def tested(test: Optional[Dict[str, Any]]) -> str:
    if not test:
        return "-"
    return f"{100 * test['before']:.2f}, {100 * test['after']:.2f}, {test['drop']:+.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=["digits", "detect", "segment", "latency", "report"])
    parser.add_argument("--out", default=str(ROOT / "runs" / "prune-recipes"))
    parser.add_argument("--folds", default="0,1,2", help="digits: the held-out folds (4 is the bundled model's)")
    parser.add_argument("--teacher", default=None, help="detect, segment: the unpruned checkpoint")
    parser.add_argument("--target-macs", default="0.5")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="rounds of the iterative variants")
    parser.add_argument("--lr", default=None, help="fine-tuning learning rate (prune's default: the task's)")
    parser.add_argument("--optimizer", default=None, help="fine-tuning optimiser, sgd or adamw (prune's default: "
                        "the task's)")
    parser.add_argument("--importance", default=None, help="channel importance (prune's default: the task's)")
    parser.add_argument("--scope", default=None, help="layer or global ranking of channels (prune's default: the "
                        "task's)")
    parser.add_argument("--weight-decay", default=None, help="fine-tuning weight decay (prune's default per optimiser)")
    parser.add_argument("--distill-weight", default=None, help="of the distilled variants (prune's default: 0.5)")
    parser.add_argument("--batch", default=None, help="the fine-tuning batch (detect and segment: 16; prune's "
                        "default: 32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="threads of every latency measurement")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--name", default=None, help="the experiment's folder under --out (default: its kind)")
    parser.add_argument("--speed-variant", default="iterative-distilled", choices=list(VARIANTS))
    parser.add_argument("--rounds", type=int, default=3, help="bench rounds of each file")
    parser.add_argument("--runs", type=int, default=1000, help="timed runs per bench round")
    parser.add_argument("--no-speed", action="store_true", help="skip the conversions and the bench")
    parser.add_argument("--speedup", type=float, default=1.5, help="latency: the target, as a speed-up over the "
                        "unpruned int8 TFLite file")
    args = parser.parse_args()
    {"digits": digits, "detect": detect, "segment": segment, "latency": latency,
     "report": report}[args.experiment](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

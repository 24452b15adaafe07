"""`edgecnn bench` and `edgecnn bench report` on small real ONNX and TFLite models."""
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, run_cli

from edgecnn.bench.measure import NOISY_RATIO, BenchConfig, latency_stats, measure, noise_reasons, read_json_lines
from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.runtime.backends import backends_for

METRICS = {"top1": 0.875, "dataset": "digits", "split": "val"}


def classifier_card(size, color="rgb", name="mobilenet_v2", width=0.5):
    return ModelCard(task="classify", labels=[str(i) for i in range(10)], input_size=(size, size), color=color,
                     mean=(127.5,), std=(127.5,), architecture={"name": name, "width": width}, metrics=METRICS)


def write_onnx(path, name="mobilenet_v2", width=0.5, size=96, color="rgb"):
    """An fp32 ONNX classifier with its card embedded."""
    import onnx
    import torch

    from converters.card_embed import embed_onnx
    from edgecnn.models import build_model

    torch.manual_seed(0)
    channels = 1 if color == "gray" else 3
    model = build_model(name, num_classes=10, width=width, in_channels=channels).eval()
    torch.onnx.export(model, (torch.zeros(1, channels, size, size),), str(path), dynamo=False, opset_version=17)
    proto = onnx.load(str(path))
    embed_onnx(proto, classifier_card(size, color, name, width))
    onnx.save(proto, str(path))
    return Path(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A MobileNetV2-0.5 ONNX file (~1-2 ms per inference here, so timing overheads show)
    and a LeNet-5 TFLite file (LiteRT conversion takes seconds: one per module)."""
    import litert_torch
    import torch

    from converters.card_embed import embed_tflite
    from edgecnn.models import build_model

    root = tmp_path_factory.mktemp("bench_models")
    onnx_path = write_onnx(root / "mnv2.onnx")
    torch.manual_seed(0)
    lenet = build_model("lenet5", num_classes=10, width=1.0, in_channels=1).eval()
    raw = root / "raw.tflite"
    litert_torch.convert(lenet, (torch.zeros(1, 1, 32, 32),)).export(str(raw))
    tflite_path = root / "lenet.tflite"
    tflite_path.write_bytes(embed_tflite(raw.read_bytes(), classifier_card(32, "gray", "lenet5", 1.0)))
    return {"onnx": onnx_path, "tflite": tflite_path}


def test_latency_stats_are_the_percentiles_of_the_runs():
    times = list(range(1, 101))  # 1..100 ms
    stats = latency_stats(times)
    assert stats["p50"] == pytest.approx(50.5) and stats["p90"] == pytest.approx(90.1)
    assert stats["p99"] == pytest.approx(99.01) and stats["mean"] == pytest.approx(50.5)
    assert stats["std"] == pytest.approx(np.std(times), abs=1e-3) and stats["fps"] == pytest.approx(1000 / 50.5, 0.01)
    assert stats["min"] == 1 and stats["max"] == 100


def test_noisy_when_the_tail_is_long_or_the_cpu_throttled():
    assert noise_reasons({"p50": 1.0, "p90": 1.4}, []) == []
    assert f"> {NOISY_RATIO}" in noise_reasons({"p50": 1.0, "p90": 1.6}, [])[0]
    assert noise_reasons({"p50": 1.0, "p90": 1.0}, ["CPU clock fell"]) == ["CPU clock fell"]
    assert noise_reasons({"p50": 1.0, "p90": 1.0}, [], cpu_share=0.98) == []
    assert "other processes competing" in noise_reasons({"p50": 1.0, "p90": 1.0}, [], cpu_share=0.5)[0]


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_bench_measures_both_formats_and_appends_json_lines(models, tmp_path):
    out = tmp_path / "bench.jsonl"
    args = [models["onnx"], models["tflite"], "--threads", "1", "--runs", "20", "--warmup", "2", "--json", out]
    result = run_cli("bench", *args, check=True)
    assert "mnv2.onnx" in result.stdout and "lenet.tflite" in result.stdout and "top-1 87.50%" in result.stdout
    records = read_json_lines([str(out)])
    assert [(r["model"], r["backend"], r["threads"]) for r in records] == [  # every installed backend
        (path.name, backend, 1) for path in (models["onnx"], models["tflite"]) for backend in backends_for(str(path))]
    for record in records:
        assert record["status"] == "ok" and record["isolated"] is True
        lat = record["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert record["fps"] == pytest.approx(1000 / lat["mean"], rel=0.01)
        assert record["load_ms"] > 0 and record["first_inference_ms"] > 0
        assert record["peak_rss_mb"] > record["rss_before_load_mb"] > 0
        assert record["precision"] == "fp32" and record["accuracy"]["value"] == 0.875
        assert record["device"]["cores"] == os.cpu_count() and record["device"]["versions"]["numpy"]
        assert "temps" in record["thermal_before"] and isinstance(record["noisy"], list)
        assert 0 < record["cpu_share"] <= 1.01  # the calling thread's CPU-seconds per second
    run_cli("bench", *args, check=True)
    assert len(read_json_lines([str(out)])) == 2 * len(records)  # appended, not overwritten


def test_a_model_that_fails_on_one_backend_is_reported_and_the_others_run(models, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not an onnx graph" * 10)
    out = tmp_path / "bench.jsonl"
    result = run_cli("bench", broken, models["tflite"], "--threads", "1", "--runs", "5", "--warmup", "0",
                     "--json", out, check=True)
    records = {(r["model"], r["backend"]): r for r in read_json_lines([str(out)])}
    broken_record = records[("broken.onnx", "onnxruntime")]
    assert broken_record["status"] == "failed" and "cannot load ONNX model" in broken_record["error"]
    assert all(r["status"] == "failed" for (model, _), r in records.items() if model == "broken.onnx")
    assert all(r["status"] == "ok" for (model, _), r in records.items() if model == "lenet.tflite")
    line = next(line for line in result.stdout.splitlines() if line.startswith("broken.onnx"))
    assert "failed" in line and "cannot load ONNX model" in line


def test_a_backend_that_cannot_run_the_format_is_a_failed_row(models, tmp_path):
    out = tmp_path / "bench.jsonl"
    result = run_cli("bench", models["tflite"], models["onnx"], "--backend", "litert", "--threads", "1",
                     "--runs", "5", "--warmup", "0", "--json", out, check=True)
    records = {r["model"]: r for r in read_json_lines([str(out)])}
    assert records["mnv2.onnx"]["status"] == "failed" and "cannot run .onnx" in records["mnv2.onnx"]["error"]
    assert records["lenet.tflite"]["status"] == "ok"
    assert "failed" in result.stdout


def test_every_configuration_failing_is_exit_2(tmp_path):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"\x00" * 64)
    result = run_cli("bench", broken, "--threads", "1", "--runs", "5")
    assert_one_line_error(result, 2, "no configuration could be measured")
    assert "not a TFLite model" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["missing.onnx"], "no such model file"),
    (["model.pt"], "runs .onnx and .tflite files"),
    (["{onnx}", "--threads", "0"], "--threads"),
    (["{onnx}", "--threads", "one"], "--threads"),
    (["{onnx}", "--backend", "tensorrt"], "--backend"),
    (["{onnx}", "--runs", "0"], "--runs"),
    (["report"], "bench report"),
    (["report", "nothing.jsonl"], "cannot read"),
])
def test_bad_input_is_one_line_and_exit_2(models, args, message):
    result = run_cli("bench", *[a.format(onnx=models["onnx"]) for a in args])
    assert_one_line_error(result, 2, message)


def test_bench_report_writes_markdown_and_chart_across_devices(models, tmp_path):
    here = tmp_path / "here.jsonl"
    run_cli("bench", models["onnx"], "--backend", "onnxruntime", "--threads", "1", "--runs", "10", "--warmup", "1",
            "--json", here, "--device-name", "desk", check=True)
    record = read_json_lines([str(here)])[0]
    other = dict(record, device=dict(record["device"], id="0123456789ab", name="pi5"),
                 latency_ms={k: v * 8 for k, v in record["latency_ms"].items()})
    there = tmp_path / "there.jsonl"
    there.write_text(json.dumps(other) + "\n")
    result = run_cli("bench", "report", here, there, "--out", tmp_path / "report", check=True)
    md = (tmp_path / "report" / "bench.md").read_text()
    assert result.stdout == md
    rows = [line for line in md.splitlines() if line.startswith("| ") and "mnv2.onnx" in line]
    assert len(rows) == 2 and {r.split(" | ")[0] for r in rows} == {"| desk", "| pi5"}
    assert all("top-1 87.50% (digits)" in r for r in rows)
    png = (tmp_path / "report" / "bench.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_bench_report_weighs_variants_of_a_model_on_a_pareto_front(models, tmp_path):
    """fp32, int8 and pruned variants measured on one device: the report tables accuracy vs
    latency vs size, marks the front (a slower, less accurate variant is off it) and draws it."""
    measured = tmp_path / "variants.jsonl"
    run_cli("bench", models["onnx"], "--backend", "onnxruntime", "--threads", "1", "--runs", "10", "--warmup", "1",
            "--json", measured, check=True)
    fp32 = read_json_lines([str(measured)])[0]
    assert fp32["size_kb"] > 100

    def variant(name, digest, accuracy, latency_scale, size_kb):
        return dict(fp32, model=name, model_sha256=digest, size_kb=size_kb,
                    accuracy=dict(fp32["accuracy"], value=accuracy),
                    latency_ms={k: v * latency_scale for k, v in fp32["latency_ms"].items()})

    extra = [variant("mnv2-int8.onnx", "1" * 16, 0.870, 0.5, fp32["size_kb"] / 4),
             variant("mnv2-worse.onnx", "2" * 16, 0.800, 1.5, fp32["size_kb"])]
    extra[0]["precision"] = "int8"
    with open(measured, "a") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in extra)
    run_cli("bench", "report", measured, "--out", tmp_path / "report", check=True)
    md = (tmp_path / "report" / "bench.md").read_text()
    section = md[md.index("## Accuracy vs latency vs size"):]
    rows = {line.split(" | ")[0][2:]: line for line in section.splitlines() if line.startswith("| mnv2")}
    assert list(rows) == ["mnv2-int8.onnx", "mnv2.onnx", "mnv2-worse.onnx"]  # fastest first
    assert rows["mnv2-int8.onnx"].endswith("| yes |") and "| 2.00x |" in rows["mnv2-int8.onnx"]
    assert "| 1.00x |" in rows["mnv2.onnx"]  # the reference: the most accurate fp32 variant
    assert rows["mnv2.onnx"].endswith("| yes |") and rows["mnv2-worse.onnx"].endswith("| no |")
    (chart,) = (tmp_path / "report").glob("pareto-*.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({chart.name})" in md


def test_report_rejects_files_that_are_not_bench_records(tmp_path):
    other = tmp_path / "other.jsonl"
    other.write_text('{"frame": 1}\n')
    assert_one_line_error(run_cli("bench", "report", other), 2, "not an edgecnn bench record")


def test_bench_runs_without_torch_or_onnx(models, tmp_path):
    """The bench (and its per-configuration processes) must work where only edgecnn[runtime] is installed."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    for name in ("torch", "onnx"):
        (blocker / f"{name}.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(blocker)])}
    result = run_cli("bench", models["onnx"], models["tflite"], "--threads", "1", "--runs", "3", "--warmup", "0",
                     "--json", "-", env=env, check=True)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    expected = [backend for path in (models["onnx"], models["tflite"]) for backend in backends_for(str(path))]
    assert [r["backend"] for r in records] == expected and all(r["status"] == "ok" for r in records), records


def test_in_process_measure_matches_the_record_shape(models):
    record = measure(BenchConfig(str(models["tflite"]), "litert", 1, runs=5, warmup=1))
    assert record["status"] == "ok" and record["input_shape"] == [1, 1, 32, 32]
    failed = measure(BenchConfig(str(models["tflite"]), "onnxruntime", 1, runs=5, warmup=1))
    assert failed["status"] == "failed" and "cannot run .tflite" in failed["error"]


def test_pipeline_adds_capture_to_result_latency_and_frame_age(models, tmp_path):
    video = ROOT / "tests" / "data" / "tree.avi"
    out = tmp_path / "bench.jsonl"
    run_cli("bench", models["onnx"], "--threads", "1", "--runs", "5", "--warmup", "1", "--pipeline", video,
            "--frames", "10", "--json", out, check=True)
    pipeline = read_json_lines([str(out)])[0]["pipeline"]
    assert pipeline["frames"] == 10 and "error" not in pipeline
    assert pipeline["end_to_end_ms"]["p50"] > pipeline["frame_age_at_start_ms"]["p50"] >= 0
    assert 0 < pipeline["fps"] <= pipeline["source_fps"] * 1.2  # a file is paced like a camera


def test_pipeline_on_a_missing_source_keeps_the_inference_figures(models, tmp_path):
    out = tmp_path / "bench.jsonl"
    run_cli("bench", models["onnx"], "--threads", "1", "--runs", "5", "--warmup", "0", "--pipeline",
            tmp_path / "no-such-video.mp4", "--frames", "5", "--json", out, check=True)
    record = read_json_lines([str(out)])[0]
    assert record["status"] == "ok" and record["pipeline"]["error"]


def test_read_json_lines_skips_blank_lines_and_names_a_bad_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('\n{"schema": "edgecnn.bench.measure/1", "model": "m"}\n\nnot json\n')
    with pytest.raises(UserError, match=r"r.jsonl:4: not a JSON line"):
        read_json_lines([str(path)])


def test_agreement_script_compares_the_bench_with_a_bare_onnxruntime_loop(models):
    """benchmarks/bench_agreement.py runs both sides and reports a consistent difference.
    The 10% agreement itself is a measurement (benchmarks/RESULTS.md), not a unit test:
    on a shared 2-core machine the medians drift apart by chance. The factor-2 bound here
    catches gross errors only, e.g. timing session creation or preprocessing per run."""
    script = ROOT / "benchmarks" / "bench_agreement.py"
    result = subprocess.run([sys.executable, str(script), str(models["onnx"]), "--runs", "50", "--rounds", "3",
                             "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 1 and rows[0]["raw_backend"] == "onnxruntime.InferenceSession"
    row = rows[0]
    assert len(row["bench_rounds_ms"]) == len(row["raw_rounds_ms"]) == 3
    assert row["bench_p50_ms"] == pytest.approx(statistics.median(row["bench_rounds_ms"]), abs=1e-3)
    assert row["difference"] == pytest.approx(row["bench_p50_ms"] / row["raw_p50_ms"] - 1, abs=1e-3)
    assert 0.5 <= row["bench_p50_ms"] / row["raw_p50_ms"] <= 2.0, row


def test_a_worker_reports_its_own_peak_rss_not_its_parents(models):
    """Linux folds a forked child's inherited RSS into ru_maxrss at exec: a worker started
    by a large process must still report only its own peak."""
    from edgecnn.bench.measure import peak_rss_mb, run_isolated

    ballast = np.ones((512, 1024, 1024), dtype=np.uint8)  # 512 MiB, touched
    assert peak_rss_mb() > 512
    record = run_isolated(BenchConfig(str(models["tflite"]), "litert", 1, runs=3, warmup=0))
    del ballast
    assert record["status"] == "ok" and record["peak_rss_mb"] < 400, record["peak_rss_mb"]


def test_report_shows_the_median_run_of_a_repeated_configuration():
    from edgecnn.bench.report import representative

    def run(p50, time, status="ok"):
        record = {"schema": "edgecnn.bench.measure/1", "model": "m.onnx", "model_sha256": "ab", "backend": "onnxruntime",
                  "threads": 1, "device": {"id": "d", "name": "dev"}, "status": status, "time": time}
        return dict(record, latency_ms={"p50": p50, "p90": p50}) if status == "ok" else dict(record, error="x")

    chosen = representative([run(5.0, "1"), run(9.0, "2"), run(4.0, "3"), run(0, "4", "failed")])
    assert len(chosen) == 1 and chosen[0]["latency_ms"]["p50"] == 5.0 and chosen[0]["runs_combined"] == 3
    assert representative([run(0, "1", "failed")])[0]["status"] == "failed"
    other_threads = dict(run(3.0, "5"), threads=2)
    assert len(representative([run(5.0, "1"), other_threads])) == 2


def test_report_without_matplotlib_is_one_line(tmp_path):
    """A device with only edgecnn[runtime] can bench; the report asks for matplotlib plainly."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "matplotlib.py").write_text("raise ImportError('matplotlib is not installed here')\n")
    records = tmp_path / "r.jsonl"
    records.write_text(json.dumps({"schema": "edgecnn.bench.measure/1", "model": "m.onnx", "backend": "onnxruntime",
                                   "threads": 1, "status": "failed", "error": "x", "device": {"name": "d"}}) + "\n")
    result = run_cli("bench", "report", records, "--out", tmp_path / "out",
                     env={"PYTHONPATH": os.pathsep.join([str(ROOT), str(blocker)])})
    assert_one_line_error(result, 2, "pip install matplotlib")


def test_a_crashed_or_hanging_configuration_is_a_failed_row(models, monkeypatch):
    from edgecnn.bench import measure as bench

    config = BenchConfig(str(models["onnx"]), "onnxruntime", 1, runs=10 ** 7, warmup=0)
    started = time.monotonic()
    hung = bench.run_isolated(config, timeout=3)
    assert hung["status"] == "failed" and hung["error"] == "did not finish within 3 s"
    assert time.monotonic() - started < 30
    crash = "import os, signal, sys; print('about to crash', file=sys.stderr); os.kill(os.getpid(), signal.SIGSEGV)"
    monkeypatch.setattr(bench, "worker_command", lambda _config: [sys.executable, "-c", crash])
    crashed = bench.run_isolated(config)
    assert crashed["status"] == "failed"
    assert crashed["error"] == "benchmark process killed by signal 11: about to crash"


def test_a_model_without_a_card_is_timed_on_its_declared_input(tmp_path):
    """Third-party files have no card: the input comes from the file's shape, no accuracy is shown."""
    import torch

    path = tmp_path / "plain.onnx"
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1)).eval()
    torch.onnx.export(model, (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False, opset_version=17)
    record = measure(BenchConfig(str(path), "onnxruntime", 1, runs=5, warmup=1))
    assert record["status"] == "ok" and record["input_shape"] == [1, 3, 32, 32]
    assert record["precision"] == "fp32" and record["accuracy"] is None and record["task"] is None


def test_an_interrupted_bench_keeps_the_records_already_measured(models, tmp_path):
    import signal

    out = tmp_path / "bench.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "edgecnn", "bench", str(models["tflite"]), str(models["onnx"]),
                                "--threads", "1", "--runs", "3000", "--warmup", "0", "--json", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               # a shell starts background jobs with SIGINT ignored, and Python then
                               # installs no KeyboardInterrupt handler: give the bench the default
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and out.read_text().count("\n") >= 1):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # while the second configuration (~1 ms x 3000 runs) is running
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    records = read_json_lines([str(out)])
    assert [r["model"] for r in records] == ["lenet.tflite"] and records[0]["status"] == "ok"

import json
import os
import subprocess
import sys
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n auto` runs one worker per core: each keeps to one compute thread (its
    # subprocesses inherit it), or two workers' thread pools spin against each other on
    # two cores. Set before numpy, OpenCV or torch load their pools.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def _torch_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: the runtime venv and a device have no xdist
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: a worker per core and one more. Some tests wait (on a server, a
    watchdog's timer, a download) and leave their core idle: on 2 cores, with
    `--dist worksteal`, the suite took 925 s with 2 workers (cores busy 92% of the time)
    and 910 s with 3 (99%)."""
    return (os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(config, items):
    """The files with the longest tests first (`@pytest.mark.slow(SECONDS)` where a test
    is known to take long), and in each file its longest tests first: the short tests
    fill in at the end (`--dist worksteal` hands them to whichever worker is free),
    instead of one long test running alone while the other cores wait. A file's tests
    stay together, so that its module-scoped fixtures (trained models, servers) are
    made once per worker that takes them, not once per switch."""
    def expected_seconds(item) -> float:
        slow = item.get_closest_marker("slow")
        return 0.0 if slow is None else float(slow.args[0]) if slow.args else 5.0

    longest, first = {}, {}
    for index, item in enumerate(items):
        longest[item.module] = max(longest.get(item.module, 0.0), expected_seconds(item))
        first.setdefault(item.module, index)
    items.sort(key=lambda item: (-longest[item.module], first[item.module], -expected_seconds(item)))


def pytest_ignore_collect(collection_path, config):
    """Where only edgecnn[runtime] is installed (a device, CI's runtime venv), the test
    modules not marked `runtime` import torch and are not collected at all."""
    if collection_path.suffix == ".py" and collection_path.name.startswith("test_") and not _torch_installed():
        return "pytest.mark.runtime" not in collection_path.read_text()
    return None


def run_cli(*args, cwd=None, env=None, timeout=600, check=False):
    """Run `python -m edgecnn ARGS` in a subprocess and return the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], capture_output=True,
                            text=True, cwd=cwd, env=full_env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"edgecnn {' '.join(map(str, args))} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def run_cli_batch(*commands, cwd=None, env=None, timeout=600):
    """Run several `edgecnn` command lines (each a sequence of arguments) one after the
    other in ONE subprocess; a CompletedProcess-like result per command line."""
    full_env = {**os.environ, **(env or {})}
    argvs = [[str(a) for a in command] for command in commands]
    result = subprocess.run([sys.executable, str(Path(__file__).with_name("cli_batch.py")), json.dumps(argvs)],
                            capture_output=True, text=True, cwd=cwd or ROOT, env=full_env, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"cli_batch failed ({result.returncode}):\n{result.stderr}")
    return [subprocess.CompletedProcess(argv, code, out, err) for argv, (code, out, err)
            in zip(argvs, json.loads(result.stdout))]


def assert_one_line_error(result, code=2, contains=None):
    """A user error: the given exit code, one line on stderr, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    if contains:
        assert contains in lines[0], lines[0]


@pytest.fixture
def image_folder(tmp_path):
    """A small real ImageFolder dataset made from digit tiles: DIR/{train,val}/<class>/*.png."""
    from edgecnn.data import load_classification

    root = tmp_path / "folder"
    for split in ("train", "val"):
        data = load_classification("digits", split)
        for label in ("3", "7"):
            index = data.labels.index(label)
            picks = np.flatnonzero(data.targets == index)[: (40 if split == "train" else 10)]
            out = root / split / f"digit{label}"
            out.mkdir(parents=True)
            for i in picks:
                cv2.imwrite(str(out / f"{i}.png"), data.images[i])
    return root


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skipped test fails the run, with its reason (which names what to
    install): CI must not pass while a capability went untested. Locally a skip stays a
    skip and says what is missing."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") == "true" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true: {reason}"


@pytest.fixture(scope="session")
def tiny_digits_lenet(tmp_path_factory):
    """One LeNet-5 trained briefly on the real digits (32x32, 3 epochs; its best.pt), shared by every
    test that needs a trained classifier checkpoint: made once per test run, the xdist
    workers waiting on a lock for whichever makes it first. Read-only for its users."""
    import fcntl

    from edgecnn.training.train import TrainConfig, train

    shared = tmp_path_factory.getbasetemp().parent / "tiny-digits-lenet"
    shared.mkdir(exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "best.pt").exists():
            train(TrainConfig(model="lenet5", data="digits", imgsz=32, epochs=3, seed=0, out=str(shared)),
                  log=lambda m: None)
    return shared / "best.pt"

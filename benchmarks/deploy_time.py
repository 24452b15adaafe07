"""Time to deploy: `edgecnn deploy` to a loopback device, wall time of the whole command
as a person would type it, for

    first     a device where nothing was deployed: the venv made (a wheel of this
              checkout copied, its dependencies from the package index with an empty
              pip cache), the release copied and started, /healthz 200
    update    a release that changes only the model (the int8 and fp32 bundled
              detectors in turn): the venv is there, nothing is installed
    rollback  `--rollback` to the release before

The device is a real systemd, PID 1 of its own namespaces, reached by an sshd on a
loopback port (tests/namespaced_systemd.py); its Python is the host's /usr/bin/python3.
Needs root. Prints a JSON summary (and writes it with --json) with the CPU flags, the
load average, the date and the commit.

    sudo python benchmarks/deploy_time.py --rounds 5 --json deploy_time.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from namespaced_systemd import device_python, free_port, start_ssh_device, usable  # noqa: E402

DEVICE_ROOT = "/srv/edgecnn"
FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "sha_ni", "aes")


def cpu() -> dict:
    model, flags = "", []
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
    return {"model": model, "cores": os.cpu_count(), "flags": [flag for flag in FLAGS if flag in flags]}


def timed(argv, what: str) -> tuple:
    """(wall seconds, the host's answer: `edgecnn deploy --json`'s line)."""
    started = time.perf_counter()
    result = subprocess.run(argv + ["--json"], capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return seconds, json.loads(result.stdout.strip().splitlines()[-1])


def spread(values) -> dict:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2), "runs": [round(v, 2) for v in values]}


def parts(answers) -> dict:
    """The device's own seconds, median over the runs: the whole step there, and its parts."""
    keys = sorted({key for answer in answers for key in answer.get("timings", {})})
    return {"device_s": round(statistics.median(a["device_s"] for a in answers), 2),
            **{key: round(statistics.median(a["timings"][key] for a in answers if key in a["timings"]), 2)
               for key in keys}}


def cli_start_seconds() -> float:
    """`edgecnn deploy --help`: the command line's own start (its parser imports the runtime)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "edgecnn", "deploy", "--help"], capture_output=True, check=True)
    return time.perf_counter() - started


def config(directory: Path, model: Path, port: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(model, directory / model.name)
    path = directory / "shop.yaml"
    path.write_text(f"model: {model.name}\nhealth: 127.0.0.1:{port}\n"
                    "cameras:\n  front: {source: 'demo?fps=10', json: front.jsonl}\n")
    return path


def main() -> None:
    from edgecnn.assets import RUNTIME_FP32, RUNTIME_INT8
    from edgecnn.deploy.install_source import built_wheel

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="updates and rollbacks timed (each)")
    parser.add_argument("--json", default=None, help="write the summary here too")
    args = parser.parse_args()
    reason = usable()
    python = device_python()
    if reason or python is None:
        raise SystemExit(f"deploy_time.py: a namespaced systemd device {reason or 'needs /usr/bin/python3 with venv'}")
    wheel, _ = built_wheel(lambda message: print(message, file=sys.stderr))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="edgecnn-deploy-time-") as work:
        work = Path(work)
        device = start_ssh_device(work / "device")
        try:
            port = free_port()
            configs = [config(work / "int8", RUNTIME_INT8, port), config(work / "fp32", RUNTIME_FP32, port)]
            base = [sys.executable, "-m", "edgecnn", "deploy", "dev", "--ssh-config", str(device.ssh_config),
                    "--python", python, "--root", DEVICE_ROOT, "--wheel", str(wheel), "--timeout", "120"]
            first, first_answer = timed(base + ["--config", str(configs[0])], "the first deploy")
            updates, rollbacks = [], []
            for _ in range(args.rounds):
                updates.append(timed(base + ["--config", str(configs[1])], "an update"))
                rollbacks.append(timed(base + ["--rollback"], "a rollback"))
            status, _ = timed(base + ["--status"], "--status")
            timed(base + ["--remove"], "--remove")
        finally:
            device.stop()
    summary = {"first_deploy_s": round(first, 1), "first_deploy_device": parts([first_answer]),
               "update_s": spread([s for s, _ in updates]), "update_device": parts([a for _, a in updates]),
               "rollback_s": spread([s for s, _ in rollbacks]), "rollback_device": parts([a for _, a in rollbacks]),
               "status_s": round(status, 2), "cli_start_s": round(cli_start_seconds(), 2), "cpu": cpu(),
               "load_average": {"before": [round(x, 2) for x in load_before],
                                "after": [round(x, 2) for x in os.getloadavg()]},
               "date": time.strftime("%Y-%m-%d %H:%M"),
               "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True).stdout.strip(),
               "device_python": python, "command": "python benchmarks/deploy_time.py " + " ".join(sys.argv[1:])}
    text = json.dumps(summary, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()

"""What checking a model's weights against its card's digest costs at load
(edgecnn.runtime.integrity; figures in benchmarks/verify_results.md), for the bundled
files.

1. digest: the verification step alone (read the file, find its buffers, sha256 over
   them), median of many; and hashlib's sha256 over the file's bytes in memory, the
   floor of any check that hashes every weight. check: the step as a reload in the
   same process pays it, for a file it verified already (a stat of the open file).
2. warm load: edgecnn.runtime.model.load(path) again and again in one process, with and
   without verify, alternating which goes first in each round; medians, and their ratio.
3. cold load: what a program or `edgecnn run` pays once at start: a fresh Python process
   per load, timed from before `import edgecnn` until load() returns (the engine's
   import included), with and without verify, alternating; medians, and their ratio.

The CPU's flags that matter here (sha_ni: hardware SHA-256) are printed from
/proc/cpuinfo: hashing runs at that speed, and on a shared machine the medians of
interleaved runs are the figures to compare, not single loads.

    .venv/bin/python benchmarks/verify_cost.py [--loads 61] [--cold 21] [--out benchmarks/verify_results.md]
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHOWN_FLAGS = ("sha_ni", "sha2", "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "asimd")
COLD = ("import sys, time\nstarted = time.perf_counter()\nimport edgecnn\n"
        "edgecnn.load(sys.argv[1], verify=sys.argv[2] == '1', log=None)\nprint(time.perf_counter() - started)\n")


def cpu() -> dict:
    """Model name, cores and flags from /proc/cpuinfo (x86 'flags', ARM 'Features')."""
    info = {"model": platform.processor() or platform.machine(), "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {**info, "cores": os.cpu_count()}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "Hardware") and info["model"] in ("", platform.machine()):
            info["model"] = value.strip()
        elif key in ("flags", "Features") and not info["flags"]:
            info["flags"] = value.split()
    return {**info, "cores": os.cpu_count()}


def median_ms(samples) -> float:
    return statistics.median(samples) * 1000


def warm(path: str, rounds: int) -> dict:
    from edgecnn.runtime import integrity
    from edgecnn.runtime.integrity import check_weights
    from edgecnn.runtime.model import load
    from edgecnn.runtime.model_file import read_card

    card = read_card(path)
    times = {True: [], False: []}
    for index in range(rounds + 1):
        for verify in ((True, False) if index % 2 else (False, True)):
            started = time.perf_counter()
            load(path, verify=verify, log=None)
            if index:  # the first round warms the engine and the page cache
                times[verify].append(time.perf_counter() - started)
    digest, check, sha256 = [], [], []
    data = Path(path).read_bytes()
    for _ in range(rounds):
        integrity._VERIFIED.clear()  # the first check of the file in a process: read and hash
        started = time.perf_counter()
        check_weights(path, card)
        digest.append(time.perf_counter() - started)
        started = time.perf_counter()  # a check again: the file is the one verified
        check_weights(path, card)
        check.append(time.perf_counter() - started)
        started = time.perf_counter()
        hashlib.sha256(data).digest()
        sha256.append(time.perf_counter() - started)
    return {"with": median_ms(times[True]), "without": median_ms(times[False]), "digest": median_ms(digest),
            "check": median_ms(check), "sha256": median_ms(sha256)}


def cold(path: str, rounds: int) -> dict:
    times = {True: [], False: []}
    for index in range(rounds):
        for verify in ((True, False) if index % 2 else (False, True)):
            out = subprocess.run([sys.executable, "-c", COLD, path, "1" if verify else "0"], capture_output=True,
                                 text=True, cwd=ROOT, check=True)
            times[verify].append(float(out.stdout.strip()))
    return {"with": median_ms(times[True]), "without": median_ms(times[False])}


def main() -> None:
    from edgecnn.assets import RUNTIME_FP32, RUNTIME_INT8

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", type=int, default=61, help="warm loads of each kind per file")
    parser.add_argument("--cold", type=int, default=21, help="fresh-process loads of each kind per file")
    parser.add_argument("--out", default=None, help="write the figures as markdown here")
    args = parser.parse_args()

    machine = cpu()
    shown = [flag for flag in SHOWN_FLAGS if flag in machine["flags"]]
    print(f"CPU: {machine['model']}, {machine['cores']} cores")
    print(f"CPU flags ({len(machine['flags'])}): {' '.join(machine['flags'])}")
    rows = []
    for path in (RUNTIME_FP32, RUNTIME_INT8):
        hot, fresh = warm(str(path), args.loads), cold(str(path), args.cold)
        row = {"file": path.name, "mb": path.stat().st_size / 1e6, **{f"warm_{k}": v for k, v in hot.items()},
               **{f"cold_{k}": v for k, v in fresh.items()}}
        row["warm_ratio"] = row["warm_with"] / row["warm_without"] - 1
        row["cold_ratio"] = row["cold_with"] / row["cold_without"] - 1
        row["digest_share"] = row["warm_check"] / row["warm_without"]
        rows.append(row)
        print(f"{path.name}: digest {row['warm_digest']:.2f} ms, again {row['warm_check']:.3f} ms; warm load {row['warm_without']:.1f} -> "
              f"{row['warm_with']:.1f} ms ({row['warm_ratio']:+.1%}); cold load {row['cold_without']:.0f} -> "
              f"{row['cold_with']:.0f} ms ({row['cold_ratio']:+.1%})")
    if args.out:
        write(Path(args.out), args, machine, shown, rows)


def write(out: Path, args, machine: dict, shown, rows) -> None:
    from edgecnn.core.atomic import write_text_atomic

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = f"python benchmarks/verify_cost.py --loads {args.loads} --cold {args.cold} --out {out}"
    lines = [
        "# Verifying the weights digest at load: what it costs",
        "",
        f"`{command}` on {now} at commit {commit}; {machine['model']}, {machine['cores']} cores "
        f"(shared with other work, load average {os.getloadavg()[0]:.1f} at the end: medians of interleaved runs); flags: {' '.join(shown) or 'none of '}"
        f"{'' if shown else ', '.join(SHOWN_FLAGS)}; Python {platform.python_version()}.",
        "",
        f"Warm: `load(path)` repeated in one process, {args.loads} loads of each kind. Cold: a fresh process per "
        f"load, {args.cold} of each kind, timed from before `import edgecnn` until `load()` returns. Digest: the "
        "check alone (read, find the buffers, sha256), as the first load in a process pays it; again: the check "
        "of a reload, for the file it verified already (the file's identity: device, inode, size, modification "
        "and change times).",
        "",
        "| file | MB | sha256 of the file ms | digest ms | again ms | warm load ms (no verify) | "
        "warm load ms (verify) | warm cost | cold load ms (no verify) | cold load ms (verify) | cold cost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row['file']} | {row['mb']:.2f} | {row['warm_sha256']:.2f} | {row['warm_digest']:.2f} | "
                     f"{row['warm_check']:.3f} | {row['warm_without']:.1f} | "
                     f"{row['warm_with']:.1f} | {row['warm_ratio']:+.1%} | {row['cold_without']:.0f} | "
                     f"{row['cold_with']:.0f} | {row['cold_ratio']:+.1%} |")
    lines += ["", "The check as a share of a warm reload (the step alone, less noisy than the difference of two "
              "medians): "
              + ", ".join(f"{row['file']} {row['digest_share']:.1%}" for row in rows) + "; of a cold load: "
              + ", ".join(f"{row['file']} {row['warm_digest'] / row['cold_without']:.1%}" for row in rows) + ".",
              "", "Under 5% of load time: "
              + "; ".join(f"{row['file']} cold {'yes' if row['warm_digest'] / row['cold_without'] < 0.05 else 'no'}, "
                          f"warm {'yes' if row['digest_share'] < 0.05 else 'no'}" for row in rows) + "."]
    floor = [row for row in rows if row["warm_sha256"] / row["warm_without"] >= 0.05]
    if floor:  # where hashing alone, with nothing else, is over the budget
        lines += ["", "hashlib's sha256 runs at " + ", ".join(
            f"{row['mb'] / row['warm_sha256']:.2f} GB/s ({row['file']}: {row['warm_sha256']:.2f} ms, "
            f"{row['warm_sha256'] / row['warm_without']:.1%} of its warm load)" for row in floor)
            + " here: hashing every weight at each reload would not stay under 5% of it; a process hashes a file "
              "once, at its first load, where the engine's import dwarfs it, and a reload of the same unchanged "
              "file checks only its identity."]
    write_text_atomic(out, "\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

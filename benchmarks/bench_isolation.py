"""Is a fresh process per configuration worth it? The same configurations measured
one after another in one process (`edgecnn bench --same-process`) and each in its
own process (the default), side by side: load time, first inference, peak RSS.

In one process, peak RSS is a high-water mark (ru_maxrss never goes down), so a
small model measured after a large one inherits the large one's figure, and a
second model on an already initialised backend loads faster than it would on a
device that just started. Give the large model first to see it.

    python benchmarks/bench_isolation.py BIG.onnx SMALL.onnx [BIG.tflite SMALL.tflite] [--threads 1] [--runs 50]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from edgecnn.bench.measure import expand_configs, run_configs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    configs = expand_configs(args.models, "auto", [args.threads], args.runs, 5)
    same = run_configs(configs, isolate=False, show_progress=False)
    fresh = run_configs(configs, isolate=True, show_progress=False)
    print("| model | backend | mode | load ms | first inference ms | peak RSS MB | p50 ms |")
    print("|---|---|---|---|---|---|---|")
    for one, own in zip(same, fresh):
        for mode, r in (("same process", one), ("fresh process", own)):
            if r["status"] != "ok":
                print(f"| {r['model']} | {r['backend']} | {mode} | failed: {r['error']} | | | |")
                continue
            print(f"| {r['model']} | {r['backend']} | {mode} | {r['load_ms']:.1f} | {r['first_inference_ms']:.2f} "
                  f"| {r['peak_rss_mb']:.0f} | {r['latency_ms']['p50']:.3f} |")


if __name__ == "__main__":
    main()

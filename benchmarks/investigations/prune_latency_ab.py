"""Full vs pruned digits model, timed A/B on the raw runtimes: 9 rounds alternating
which file runs first, 500 runs each; the ratio is the median of per-round ratios.
Uses the files `benchmarks/compress_results.py` writes.

    python benchmarks/investigations/prune_latency_ab.py [runs/compress/digits]
"""
import statistics
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter
import onnxruntime as ort
D = (sys.argv[1] if len(sys.argv) > 1 else "runs/compress/digits").rstrip("/") + "/"
def tfl(p, t):
    it = Interpreter(model_path=D+p, num_threads=t); it.allocate_tensors(); d = it.get_input_details()[0]
    x = np.zeros(d["shape"], d["dtype"])
    def run(): it.set_tensor(d["index"], x); it.invoke()
    return run
def onx(p, t):
    o = ort.SessionOptions(); o.intra_op_num_threads = t
    s = ort.InferenceSession(D+p, o, providers=["CPUExecutionProvider"]); i = s.get_inputs()[0]
    f = {i.name: np.zeros(i.shape, np.float32)}
    return lambda: s.run(None, f)
def med(run, n=500):
    ts=[]
    for _ in range(n):
        a=time.perf_counter(); run(); ts.append(time.perf_counter()-a)
    return statistics.median(ts)
for kind, mk, a, b in [("tflite fp32", tfl, "digits_mobilenet_v2-fp32.tflite", "digits-pruned-fp32.tflite"),
                       ("tflite int8", tfl, "digits_mobilenet_v2-int8.tflite", "digits-pruned-int8.tflite"),
                       ("onnx fp32", onx, "digits_mobilenet_v2-fp32.onnx", "digits-pruned-fp32.onnx")]:
    for t in (1, 2):
        ra, rb = mk(a, t), mk(b, t)
        med(ra, 100); med(rb, 100)
        ratios, ma, mb = [], [], []
        for r in range(9):
            x, y = (med(ra), med(rb)) if r % 2 == 0 else tuple(reversed((med(rb), med(ra))))
            ma.append(x); mb.append(y); ratios.append(x / y)
        print(f"{kind} {t} thread(s): full {1000*statistics.median(ma):.3f} ms, pruned {1000*statistics.median(mb):.3f} ms, ratio {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})", flush=True)

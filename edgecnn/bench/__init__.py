"""edgecnn bench: latency, load time, peak memory and pipeline figures per model, backend and thread
count, each configuration in a fresh process (measure.py), reported as tables and
Pareto charts (report.py), locally or on a device over ssh (remote.py)."""

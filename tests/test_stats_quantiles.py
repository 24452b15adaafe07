"""A run's latency percentiles come from constant memory (log buckets 1% wide), within
1% of the exact percentiles of the samples, whatever the distribution. Property tests
need hypothesis, which the device's runtime venv lacks, so they are not marked runtime."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgecnn.runtime.stats import LogQuantiles, StreamStats


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 3000), scale=st.floats(0.01, 5000.0),
       spread=st.floats(0.0, 2.0), q=st.sampled_from([0, 1, 50, 90, 99, 100]))
def test_percentiles_are_within_one_percent_of_the_samples(seed, n, scale, spread, q):
    samples = scale * np.random.default_rng(seed).lognormal(0.0, spread, n)
    quantiles = LogQuantiles()
    for value in samples:
        quantiles.add(float(value))
    exact = float(np.sort(samples)[int(round(q / 100 * (n - 1)))])  # the sample at that rank
    assert quantiles.percentile(q) == pytest.approx(exact, rel=0.01)


def test_memory_does_not_grow_with_the_frames_and_odd_values_are_kept():
    quantiles = LogQuantiles()
    size = quantiles.counts.nbytes
    for value in (0.0, -1.0, float("nan"), 1e-9, 1e12, 5.0):
        quantiles.add(value)
    assert quantiles.count == 6 and quantiles.counts.nbytes == size < 32_000
    assert quantiles.percentile(0) == 0.0 and quantiles.percentile(100) > 1e7
    assert LogQuantiles().percentile(50) == 0.0


def test_the_summary_percentiles_cover_the_whole_run():
    class Result:
        def __init__(self, age, inference):
            self.frame_age_ms, self.inference_ms = age, inference

        def to_dict(self):
            return {}

        def __iter__(self):
            return iter(())

    stats = StreamStats()
    for index in range(200_000):  # longer than any window: the first frames still count
        stats.add(Result(10.0 if index < 150_000 else 100.0, 5.0))
    snap = stats.snapshot()
    assert snap["frames"] == 200_000
    assert snap["age_p50_ms"] == pytest.approx(10.0, rel=0.01) and snap["age_p90_ms"] == pytest.approx(100.0, rel=0.01)
    assert snap["inference_p50_ms"] == pytest.approx(5.0, rel=0.01)

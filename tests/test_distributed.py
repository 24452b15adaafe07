"""Data-parallel training through PyTorch's own engine: torchrun, 2 CPU processes, gloo."""
import pytest
import json
import subprocess
import sys

from edgecnn.training.checkpoint import load_checkpoint

ARGS = ["train", "--model", "lenet5", "--data", "digits", "--imgsz", "32", "--epochs", "4", "--seed", "1"]


@pytest.mark.slow(45)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_two_processes_reach_the_accuracy_of_one(tmp_path):
    single = subprocess.run([sys.executable, "-m", "edgecnn", *ARGS, "--out", str(tmp_path / "one"), "--json"],
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "edgecnn", *ARGS, "--out", str(tmp_path / "two"), "--json"],
                         capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = json.loads(single.stdout)
    two = [json.loads(line) for line in ddp.stdout.splitlines() if line.startswith("{")]
    assert len(two) == 1 and two[0]["world_size"] == 2  # rank 0 reports for both
    assert one["last"]["top1"] > 0.95
    assert abs(one["last"]["top1"] - two[0]["last"]["top1"]) <= 0.01, (one["last"]["top1"], two[0]["last"]["top1"])
    ckpt = load_checkpoint(tmp_path / "two" / "last.pt")
    assert ckpt["world_size"] == 2 and ckpt["epoch"] == 4


def test_ranks_split_exactly_the_single_process_batches():
    from edgecnn.training.train import TrainConfig, epoch_order

    config = TrainConfig(batch=32, seed=5)
    single = epoch_order(1000, config, 2, 1, 0)
    ranks = [epoch_order(1000, config, 2, 2, r) for r in range(2)]
    assert sorted(single) == list(range(1000)) and len(ranks[0]) == len(ranks[1]) == 500
    for step in range(1000 // 32):
        union = ranks[0][16 * step:16 * (step + 1)] + ranks[1][16 * step:16 * (step + 1)]
        assert sorted(union) == sorted(single[32 * step:32 * (step + 1)])
    odd = [epoch_order(1001, config, 0, 2, r) for r in range(2)]
    assert len(odd[0]) == len(odd[1])  # padded so every rank takes the same number of steps

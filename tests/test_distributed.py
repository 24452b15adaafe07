"""Data-parallel training through PyTorch's own engine: torchrun, 2 CPU processes, gloo."""
import json
import subprocess
import sys

from edgecnn.checkpoint import load_checkpoint

ARGS = ["train", "--model", "lenet5", "--data", "digits", "--imgsz", "32", "--epochs", "4", "--seed", "1"]


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

"""Training: learning on real digits, atomic checkpoints, exact resume after a kill, bad input."""
import pytest
import json
import signal
import subprocess
import sys
import time

import torch

from conftest import assert_one_line_error, run_cli, run_cli_batch
from edgecnn.training.checkpoint import load_checkpoint
from edgecnn.training.train import TrainConfig, train

TINY = dict(model="lenet5", width=1.0, data="digits", imgsz=32, batch=64)
KILLABLE = ["--model", "lenet5", "--data", "digits", "--imgsz", "32", "--epochs", "4", "--seed", "3"]


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_lenet_learns_real_digits(tmp_path):
    summary = train(TrainConfig(**TINY, epochs=3, out=str(tmp_path)), log=lambda m: None)
    assert summary["last"]["top1"] > 0.90, summary  # 10 classes: chance is 0.10
    ckpt = load_checkpoint(tmp_path / "best.pt")
    assert ckpt["card"]["metrics"]["top1"] == summary["best"]
    assert ckpt["card"]["color"] == "gray" and ckpt["card"]["input_size"] == [32, 32]
    assert [h["epoch"] for h in ckpt["history"]] == list(range(1, ckpt["epoch"] + 1))


def test_validation_every_n_epochs_and_after_the_last(tmp_path):
    """Skipped epochs are not validated, and their checkpoint's card claims no accuracy."""
    seen = []
    summary = train(TrainConfig(**TINY, epochs=3, val_every=2, out=str(tmp_path), max_train_images=256),
                    log=seen.append)
    validated = [h["epoch"] for h in summary["history"] if "val_top1" in h]
    assert validated == [2, 3] and sum("(not validated)" in line for line in seen) == 1
    assert load_checkpoint(tmp_path / "last.pt")["card"]["metrics"]["epoch"] == 3
    assert load_checkpoint(tmp_path / "best.pt")["card"]["metrics"]["epoch"] in (2, 3)


@pytest.mark.slow(45)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_kill_then_resume_ends_in_the_same_weights(tmp_path):
    """SIGKILL mid-run leaves a loadable last.pt; --resume finishes with the weights of an uninterrupted run."""
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "edgecnn", "train", *KILLABLE, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        while not (killed / "last.pt").exists() and time.time() < deadline:
            time.sleep(0.05)
        still_running = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert still_running, "training finished before it could be killed"
    interrupted_at = load_checkpoint(killed / "last.pt")["epoch"]
    assert 1 <= interrupted_at < 4

    run_cli("train", "--out", killed, "--resume", check=True)
    run_cli("train", *KILLABLE, "--out", tmp_path / "straight", check=True)
    resumed = load_checkpoint(killed / "last.pt")
    straight = load_checkpoint(tmp_path / "straight" / "last.pt")
    assert resumed["epoch"] == straight["epoch"] == 4
    assert all(torch.equal(resumed["model"][k], straight["model"][k]) for k in straight["model"])
    assert [h["val_top1"] for h in resumed["history"]] == [h["val_top1"] for h in straight["history"]]


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_cli_train_on_an_image_folder(tmp_path, image_folder):
    result = run_cli("train", "--model", "lenet5", "--data", image_folder, "--imgsz", "32", "--epochs", "2",
                     "--out", tmp_path / "f", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 2 and (tmp_path / "f" / "best.pt").exists()
    assert load_checkpoint(tmp_path / "f" / "best.pt")["card"]["labels"] == ["digit3", "digit7"]


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_cli_bad_training_input(tmp_path, image_folder):
    import shutil

    out = ["--out", tmp_path / "x"]
    empty_class = tmp_path / "empty_class"
    shutil.copytree(image_folder, empty_class)
    (empty_class / "train" / "digit5").mkdir()
    corrupt = tmp_path / "corrupt"
    shutil.copytree(image_folder, corrupt)
    (corrupt / "train" / "digit3" / "bad.png").write_bytes(b"garbage")
    cases = [(("--data", tmp_path / "missing", *out), "not found"),
             (("--data", empty_class, *out), "has no images"),
             (("--data", corrupt, *out), "bad.png"),
             (("--model", "alexnet9", *out), "unknown model"),
             (("--width", "0", *out), "width"),
             (("--width", "-0.5", *out), "width"),
             (("--imgsz", "16", *out), "imgsz"),
             (("--val-every", "0", *out), "--val-every"),
             (("--resume", "--out", tmp_path / "never"), "not found")]
    for result, (_, message) in zip(run_cli_batch(*(["train", *args] for args, _ in cases)), cases):
        assert_one_line_error(result, contains=message)
    assert not (tmp_path / "x").exists() or not list((tmp_path / "x").glob("*.pt"))


def test_micro_batches_give_the_full_batch_gradient_and_per_micro_batch_norm_statistics():
    """--bn-batch: gradients over the whole batch (same as one pass when nothing depends
    on batch statistics), BatchNorm statistics over each micro-batch (as under DDP)."""
    import torch
    from torch import nn

    from edgecnn.training.train import backward_in_micro_batches

    class Task:
        @staticmethod
        def loss(net, batch):
            x, y = batch
            return nn.functional.cross_entropy(net(x), y)

    torch.manual_seed(0)
    x, y = torch.randn(12, 5), torch.randint(0, 3, (12,))
    plain = nn.Linear(5, 3)
    full = backward_in_micro_batches(Task, plain, (x, y), None)
    full_grad = plain.weight.grad.clone()
    plain.zero_grad()
    split = backward_in_micro_batches(Task, plain, (x, y), 4)
    torch.testing.assert_close(plain.weight.grad, full_grad)
    torch.testing.assert_close(split, full.detach())

    normed = nn.Sequential(nn.BatchNorm1d(5, momentum=None), nn.Linear(5, 3))
    backward_in_micro_batches(Task, normed, (x, y), 4)
    # momentum=None keeps the cumulative average of the three micro-batches' means
    expected = torch.stack([x[i:i + 4].mean(0) for i in (0, 4, 8)]).mean(0)
    torch.testing.assert_close(normed[0].running_mean, expected)

"""The layers hold: import-linter checks the contracts in pyproject.toml (the device side
never imports torch, ONNX, litert-torch or the training side; no library module imports
the CLI; one layers contract over every package; detector heads independent of each
other), no two packages import each other, and the check does fail when a runtime module
reaches for torch."""
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml")], cwd=root, capture_output=True,
                          text=True, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, timeout=300)


def test_the_layer_contracts_are_kept():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


def test_no_two_sibling_packages_import_each_other():
    """A cycle between packages (directly or through others) is a layer in disguise."""
    import itertools

    import grimp

    graph = grimp.build_graph("edgecnn", "converters", "devices")
    packages = sorted(m for m in graph.modules if graph.find_children(m))
    cycles = []
    for parent in {p.rpartition(".")[0] for p in packages if "." in p}:
        siblings = [p for p in packages if p.rpartition(".")[0] == parent]
        for a, b in itertools.combinations(siblings, 2):
            if graph.chain_exists(a, b, as_packages=True) and graph.chain_exists(b, a, as_packages=True):
                cycles.append((a, b))
    assert cycles == []


def test_a_runtime_module_importing_torch_breaks_a_contract(tmp_path):
    for package in ("edgecnn", "converters", "devices"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("assets", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    stats = tmp_path / "edgecnn" / "runtime" / "stats.py"
    stats.write_text(stats.read_text() + "\n\ndef _helper():\n    import torch  # a lazy import counts too\n")
    result = lint(tmp_path)
    assert result.returncode == 1 and "BROKEN" in result.stdout
    assert "edgecnn.runtime.stats -> torch" in result.stdout

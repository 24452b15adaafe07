"""Under CI=true a skip is a failure that names what is missing; locally it stays a skip."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_a_skip_fails_under_ci_and_names_the_missing_package(tmp_path):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path)
    (tmp_path / "test_probe.py").write_text(
        "import pytest\npytestmark = pytest.mark.runtime\n\n"
        "def test_needs_something():\n    pytest.skip('needs foo (apt-get install -y foo)')\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    local = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout
    ci = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                        cwd=tmp_path, env={**env, "CI": "true"}, capture_output=True, text=True, timeout=120)
    assert ci.returncode == 1 and "1 failed" in ci.stdout, ci.stdout
    assert "skipped under CI=true: needs foo (apt-get install -y foo)" in ci.stdout

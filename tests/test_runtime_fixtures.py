"""The committed runtime-test models are what tests/make_runtime_fixtures.py makes from
the current bundled checkpoints (so the torch-free tests test today's models)."""
import sys

from runtime_fixtures import MODELS, ROOT


def test_committed_runtime_models_match_the_bundled_checkpoints(tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    from make_runtime_fixtures import main

    main(tmp_path)
    for made in sorted(tmp_path.iterdir()):
        assert made.read_bytes() == (MODELS / made.name).read_bytes(), (
            f"{made.name} differs from tests/data/models: run python tests/make_runtime_fixtures.py")

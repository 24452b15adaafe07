"""The embedding API a robot program uses: results iterate per object, and annotation is
public (`edgecnn.annotate`), for a detector and a classifier alike."""
import numpy as np
import pytest

import edgecnn
from edgecnn.core.scenes import DETECTION_SHAPES
from edgecnn.data.detection import shapes_scene
from runtime_fixtures import digits_onnx

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed


def test_detections_iterate_per_object_and_draw_publicly():
    model = edgecnn.load()  # the bundled detector
    image = shapes_scene(0, "val", 2)[0]
    result = model.predict(image)
    objects = list(result)
    assert len(objects) == len(result) > 0
    for d, box, score, class_id in zip(objects, result.boxes, result.scores, result.classes):
        assert d.label == DETECTION_SHAPES[class_id] and d.score == pytest.approx(float(score))
        assert d.box == pytest.approx(tuple(float(v) for v in box))
    drawn = edgecnn.annotate(image, result)
    assert drawn.shape == image.shape and drawn is not image
    assert (drawn != image).any() and (image == shapes_scene(0, "val", 2)[0]).all()  # the input is untouched


def test_a_classifier_result_iterates_its_top_classes():
    model = edgecnn.load(str(digits_onnx()))
    image = np.full((28, 28), 255, np.uint8)
    image[6:22, 12:16] = 0  # a dark vertical stroke
    result = model.predict(image)
    top = list(result)
    assert len(top) == 5 and [c.label for c in top][0] == result.label
    assert all(c.box is None for c in top) and top[0].score >= top[1].score >= top[-1].score
    drawn = edgecnn.annotate(image, result, status="ok")
    assert drawn.ndim == 3 and (drawn[..., 0] != image).any()


def test_the_readme_embedding_example_runs_as_written(tmp_path):
    import re
    import subprocess
    import sys

    from runtime_fixtures import ROOT

    readme = (ROOT / "README.md").read_text()
    example = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "edgecnn.annotate" in block)
    result = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(line.split()[0] in DETECTION_SHAPES and line.endswith("ms old") for line in lines)
    assert (tmp_path / "last.jpg").read_bytes()[:2] == b"\xff\xd8"

"""A task is one folder: a task made in a temporary folder (a "rank" task that orders a
model's labels by score), and nothing else written anywhere, is found by the registry,
takes part in the result schema, the run command's choices and record options, runs a
real model file end to end, and gets one-line errors, with no line of edgecnn changed."""
import json
import textwrap

import pytest

import edgecnn.tasks
from edgecnn.core.errors import UserError
from runtime_fixtures import digits_onnx

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed

RANK_TASK = '''
"""Ranks a model's labels by score."""
from edgecnn.core.errors import UserError
from edgecnn.core.task import Metric, Task
from edgecnn.tasks.rank.result import Ranking


class RankTask(Task):
    name = "rank"
    people_name = "rankers"
    primary_metric = "ndcg"
    metric_label = "nDCG"
    metrics = {"ndcg": Metric("nDCG")}
    record_options = {"rank_top": dict(default=None, type=int, help="rankers: how many labels each record lists")}

    def check_outputs(self, card, shapes, model_name):
        if len(shapes) != 1 or shapes[0][-1] != len(card.labels):
            raise UserError(f"{model_name}: a ranker with {len(card.labels)} labels outputs one score per label")

    def interpret(self, card, outputs, image_size, *, conf, iou, max_results=100):
        return Ranking(outputs[0].reshape(-1), card.labels)

    def schema_fields(self):
        return {"ranking": {"type": "array", "items": {"type": "string"}}}


TASK = RankTask()
'''
RANK_RESULT = '''
"""A ranking: every label, best first."""
from dataclasses import dataclass
from typing import List

import numpy as np

from edgecnn.runtime.results import Item, Timing


@dataclass
class Ranking(Timing):
    scores: np.ndarray
    labels: List[str]
    frame_index: int = 0
    capture_time: float = 0.0
    frame_age_ms: float = 0.0
    inference_ms: float = 0.0

    def __iter__(self):
        for i in np.argsort(-self.scores):
            yield Item(self.labels[i], int(i), float(self.scores[i]))

    def to_dict(self, rank_top=None, **_other_tasks_options):
        order = np.argsort(-self.scores)[:rank_top]
        return {**self.timing_dict(), "task": "rank", "ranking": [self.labels[i] for i in order]}

    def draw(self, canvas):
        pass
'''


@pytest.fixture
def rank_task(tmp_path, monkeypatch):
    """The folder edgecnn/tasks/rank/, made outside the tree and put on the tasks'
    package path (as if it had been copied in)."""
    folder = tmp_path / "rank"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "task.py").write_text(textwrap.dedent(RANK_TASK))
    (folder / "result.py").write_text(textwrap.dedent(RANK_RESULT))
    monkeypatch.setattr(edgecnn.tasks, "__path__", [*edgecnn.tasks.__path__, str(tmp_path)])
    return folder


def test_a_new_task_is_one_folder(rank_task, tmp_path, capsys):
    import edgecnn
    from edgecnn.cli import main
    from edgecnn.core.task import format_metric, task_names
    from edgecnn.runtime.card_options import CardOptions
    from edgecnn.runtime.schema import records, validate

    assert "rank" in task_names() and format_metric("ndcg", 0.5) == "ndcg 50.00%"
    model = edgecnn.load(str(digits_onnx()), card=CardOptions(task="rank"), log=None)
    image = __import__("numpy").zeros((28, 28, 3), "uint8")
    result = model.predict(image)
    assert [record["type"] for record in records(result)] == ["frame"]
    for record in records(result, rank_top=3):
        assert validate(record) == [] and len(record["ranking"]) == 3
    with pytest.raises(UserError, match="tracking needs a detector"):
        model.stream("demo", track=True)

    out = tmp_path / "ranked.jsonl"
    with pytest.raises(SystemExit) as finished:
        main(["run", str(digits_onnx()), "--task", "rank", "--rank-top", "2", "--source", "demo?size=64",
              "--max-frames", "3", "--json", str(out)])
    assert finished.value.code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3 and all(len(line["ranking"]) == 2 and validate(line) == [] for line in lines)

    with pytest.raises(SystemExit) as refused:
        main(["run", str(digits_onnx()), "--task", "rank", "--labels", "a,b", "--source", "demo", "--max-frames", "1"])
    assert refused.value.code == 2
    assert capsys.readouterr().err.strip().endswith("a ranker with 2 labels outputs one score per label")

"""Every task's torch side implements the TaskTraining interface: each member, with the
parameters the interface names (training, evaluation, pruning, quantization and
`edgecnn shapes` call them by these names)."""
import inspect

import pytest

from edgecnn.core.task import TaskTraining, get_task, missing_members, task_names


@pytest.mark.parametrize("name", task_names())
def test_task_training_implements_the_interface(name):
    training = get_task(name).training()
    assert isinstance(training, TaskTraining) and missing_members(training) == []
    for member, reference in vars(TaskTraining).items():
        if member.startswith("_") or not callable(reference):
            continue
        expected = [p for p in inspect.signature(reference).parameters if p != "self"]
        assert list(inspect.signature(getattr(training, member)).parameters) == expected, (name, member)
    assert training.QAT_LR > 0 and training.QAT_BATCH > 0


def test_a_training_side_that_lacks_a_member_is_named():
    class Partial(TaskTraining):
        QAT_LR, QAT_BATCH = 1e-3, 8

        def build_model(self, card):
            return None

    assert "make_training" in missing_members(Partial()) and "build_model" not in missing_members(Partial())

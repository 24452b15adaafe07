"""The tasks: each one (classify, detect, segment, ...) is one package here.

A task package holds:
- `task.py`: a `TASK` object (a subclass of edgecnn.core.task.Task, torch-free): its
  card checks, what a model without a card must be told, how its outputs are checked
  and turned into its result type, its capabilities, metrics, schema fragment, record
  options and training options.
- `result.py`: the result type a robot program gets (iterable per object, JSON form,
  drawing).
- `training.py` (torch): `TRAINING`, an edgecnn.core.task.TaskTraining: datasets, loss,
  validation, evaluation, the model builder.

`edgecnn.core.task.get_task(name)` finds a task; an unknown name is one line listing
the known ones.
"""

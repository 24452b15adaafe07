"""The model layer's training side (torch): the epoch loop, checkpoints, evaluation and
`edgecnn info` on checkpoints. Task specifics come from each task's training module."""

"""The model layer's training side (torch): the epoch loop, checkpoints, evaluation,
distillation and `edgecnn info` on checkpoints. Task specifics come from each task's
training module."""

# Distillation from a teacher during fine-tuning (edgecnn.training.distill); here, free
# of torch, so that the command line lists the modes without importing it. "features"
# adds the last feature maps' attention to the outputs; QAT's graph has no modules to
# tap, so it offers the output modes only.
DISTILL_MODES = ("off", "logits", "features")
OUTPUT_DISTILL_MODES = ("off", "logits")
DISTILL_WEIGHT = 0.5  # the teacher's share of the loss, the labels' being the rest

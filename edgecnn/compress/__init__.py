"""Compression and export (torch): pruning, the accuracy gate, int8 quantization and
conversion to ONNX and TFLite, each refused beyond its accuracy budget."""

# Torch-Pruning's channel importance criteria edgecnn offers (edgecnn.compress.prune);
# here, free of torch, so that the command line lists them without importing it.
IMPORTANCE = ("magnitude", "taylor", "bn-scale", "lamp", "random")
# where channels are ranked against each other, and how the log says it
SCOPES = {"layer": "within each layer", "global": "across the network"}
# the fine-tuning's optimisers, each with its usual decay (SGD's L2 term and AdamW's
# decoupled decay differ in scale)
OPTIMIZER_DECAY = {"sgd": 5e-4, "adamw": 0.01}

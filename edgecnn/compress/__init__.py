"""Compression and export (torch): pruning, the accuracy gate, int8 quantization and
conversion to ONNX and TFLite, each refused beyond its accuracy budget."""

# Torch-Pruning's channel importance criteria edgecnn offers (edgecnn.compress.prune);
# here, free of torch, so that the command line lists them without importing it.
IMPORTANCE = ("magnitude", "taylor", "bn-scale", "lamp", "random")

"""Compression and export (torch): pruning, the accuracy gate, int8 quantization and
conversion to ONNX and TFLite, each refused beyond its accuracy budget."""

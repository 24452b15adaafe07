"""The device runtime: imports numpy and OpenCV only (never torch or onnx)."""

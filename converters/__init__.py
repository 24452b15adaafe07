"""Model converters: PyTorch to ONNX and TFLite, each a function
`convert(model, card, out_path, **options) -> Report`, with the model card embedded."""

# What `edgecnn convert` writes (converters.convert), free of torch so that the command
# line lists them without importing it.
TARGETS = ("onnx", "tflite", "all")
PRECISIONS = ("fp32", "int8", "both", "auto")
# The files `edgecnn prune --latency-on` times (converters.latency.DeployedLatency).
DEPLOYMENTS = ("tflite-int8", "tflite-fp32", "onnx-int8", "onnx-fp32")

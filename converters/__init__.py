"""Model converters: PyTorch to ONNX and TFLite, each a function
`convert(model, card, out_path, **options) -> Report`, with the model card embedded."""

"""Semantic segmentation: a label per pixel (task.py, result.py; training.py, loss.py and
metrics.py are the torch side, metrics.py is numpy)."""

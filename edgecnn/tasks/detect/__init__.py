"""Detection: boxes, labels and scores (task.py, result.py; training.py, loss.py and
metrics.py are the torch side). Output formats are heads (edgecnn/runtime/heads)."""

"""Classification: one label per image (task.py, result.py; training.py is the torch side)."""

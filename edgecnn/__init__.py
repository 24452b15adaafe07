"""edgecnn: train, prune, quantize, convert and run MobileNet-style CNNs on edge devices.

Importing the package is cheap and imports no torch; training-side modules import it
when used.
"""
__version__ = "0.1.0"

#!/usr/bin/env python3
"""`python devices/emulated_pi.py ...`: the command line of the devices/emulated_pi package
(also `python -m devices.emulated_pi ...`); see devices/emulated_pi/cli.py."""
import os
import sys

# Run as a script, this file's folder comes first on sys.path, and devices/profile.py
# would shadow the standard library's `profile`: the checkout's root takes its place.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [os.path.dirname(_HERE)] + [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

from devices.emulated_pi.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

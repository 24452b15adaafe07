"""python -m devices.emulated_pi: the same command line as devices/emulated_pi.py."""
import sys

from devices.emulated_pi.cli import main

sys.exit(main())

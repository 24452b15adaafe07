"""edgecnn's device runtime on an emulated Raspberry Pi, checked against x86.

A Raspberry Pi is not always at hand; qemu-user running a Debian 12 (Raspberry Pi OS
Bookworm's base) arm64 userland is, on any Linux host. It answers "does the runtime work
on arm64 and agree with x86", never "how fast" (emulation is 300-700x slower).

    python devices/emulated_pi.py --help      (or python -m devices.emulated_pi --help)

Modules: cli (the command line), emulate (one run, start to end), sysroot (the arm64
userland and the board it presents), install (the venv and the wheels in it),
prerequisites (what a run needs, checked before it starts), checks (what is run on
both sides), compare (how records and raw outputs are compared), steps (running
commands and programs/, and how a failure is reported). programs/ holds the Python
files the emulated and the host Pythons run.
"""

"""`edgecnn deploy`: a run config (or one camera) as a systemd service on devices
reached over ssh, with health checks, a watchdog and rollback. Torch-free; it drives the
device the way `edgecnn bench --remote` does (edgecnn.bench.remote.SshTarget).

On the desktop:
    rollout          the deploy and the other actions, one host or several in parallel
    release_files    the config as the device reads it, its model files, extras, health URL
    trust            models go only with a passing gate and weights that match their card
    install_source   what the device's venv installs (the index, a wheel, a wheelhouse)
    unit             the systemd unit, its hardening documented
    device_session   the ssh steps: each one connection, running the device's Python
    status_table     one table for many hosts
On the device (sent over ssh; the standard library only):
    device_probe     Python, machine, disk, cameras, systemd, before anything is written
    agent            prepare, activate, rollback, status, stop, remove
    layout           releases, venvs, the `current` link switched atomically
    venv_setup       the venv a release runs in
    systemd_control  systemctl and journalctl
    health_wait      READY=1 and /healthz 200, or why not
"""

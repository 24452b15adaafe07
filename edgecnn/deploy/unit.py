"""The systemd unit a deploy installs: `edgecnn run --config` of the current release,
as an unprivileged user, restarted when it fails or hangs, and hardened as far as a
camera and an accelerator still work. The comments go into the installed file, so the
device documents itself.

Not set, and why:
    PrivateDevices=        cameras (/dev/video*, /dev/media*, DMA heaps) and accelerators
                           (/dev/dri, /dev/apex_0, /dev/hailo0) live in /dev; the device
                           files' groups (SupplementaryGroups) limit access instead
    MemoryDenyWriteExecute= OpenVINO's CPU plugin (oneDNN) and XNNPACK generate code at run time
    ProcSubset=pid         the device profile reads /proc/cpuinfo (the camera stack and the
                           bundled model's choice depend on it)
    PrivateUsers=          the video group would not be mapped: the cameras would not open
    PrivateNetwork=, IPAddressDeny=  network cameras, publishers and /healthz need the network
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

DRAIN_SECONDS = 10  # edgecnn.runtime.runner.DRAIN_SECONDS: the most a stopping run waits for its sinks
STOP_MARGIN_SECONDS = 10  # finalising a video and closing the cameras after the drain
RESTART_SECONDS = 5  # between a failure and the next start: a crash loop cannot spin
EXIT_USER_ERROR = 2  # edgecnn.core.errors.UserError: a config, model or file only a person can fix


@dataclass
class UnitSettings:
    service: str  # edgecnn or edgecnn-NAME: the unit, the user, the state and cache directories
    root: str  # the deploy's root on the device (edgecnn.deploy.layout)
    user: str
    groups: List[str] = field(default_factory=list)  # supplementary groups that exist on the device
    watchdog_seconds: int = 30
    start_seconds: int = 120
    read_write_paths: List[str] = field(default_factory=list)  # directories of outputs named by absolute paths
    protect_home: str = "yes"  # "read-only" where the device's Python lives in a home directory


def unit_text(settings: UnitSettings) -> str:
    s = settings
    current = f"{s.root}/current"
    groups = " ".join(s.groups)
    writable = " ".join(f"-{path}" for path in s.read_write_paths)
    return f"""# {s.service}.service: installed by `edgecnn deploy`, replaced by the next deploy or rollback.
[Unit]
Description=edgecnn run ({s.service})
Wants=network-online.target
After=network-online.target
# no limit on restarts: a camera or network that comes back later is served again
StartLimitIntervalSec=0

[Service]
Type=notify
NotifyAccess=main
ExecStart={current}/venv/bin/python -m edgecnn run --config {current}/config.yaml
# READY=1 comes once the model is loaded and a first frame went through it
TimeoutStartSec={s.start_seconds}
# WATCHDOG=1 comes only while results do: a hung camera or backend is killed and restarted
WatchdogSec={s.watchdog_seconds}
Restart=on-failure
RestartSec={RESTART_SECONDS}
# exit {EXIT_USER_ERROR}: a config, model or file a person must fix; restarting cannot help
RestartPreventExitStatus={EXIT_USER_ERROR}
# SIGTERM: the run drains its outputs for at most {DRAIN_SECONDS} s, then exits 0
TimeoutStopSec={DRAIN_SECONDS + STOP_MARGIN_SECONDS}
User={s.user}
Group={s.user}
{f"SupplementaryGroups={groups}" if groups else "# SupplementaryGroups: none of video, render exists here"}
# outputs the config names by relative paths, and the runtime's cache
StateDirectory={s.service}
CacheDirectory={s.service}
WorkingDirectory=/var/lib/{s.service}
Environment=XDG_CACHE_HOME=/var/cache/{s.service} PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
SyslogIdentifier={s.service}
UMask=0027

# hardening: what the run needs is files to read, its outputs, /dev, the network
NoNewPrivileges=yes
CapabilityBoundingSet=
RestrictSUIDSGID=yes
ProtectSystem=strict
{f"ReadWritePaths={writable}" if writable else "# ReadWritePaths: no output outside StateDirectory"}
ProtectHome={s.protect_home}
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
LockPersonality=yes
RemoveIPC=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
# not set: PrivateDevices (cameras, accelerators), MemoryDenyWriteExecute (oneDNN and XNNPACK
# generate code), ProcSubset=pid (/proc/cpuinfo is read), PrivateUsers (the video group),
# PrivateNetwork (network cameras, publishers, /healthz)

[Install]
WantedBy=multi-user.target
"""

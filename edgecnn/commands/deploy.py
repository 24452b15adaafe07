"""`edgecnn deploy USER@HOST... --config FILE.yaml`: the setup a config describes, as a
systemd service on each device that runs it at boot, reports its health, and goes back
to the previous release when a new one is not healthy (edgecnn.deploy)."""
from __future__ import annotations

from edgecnn.commands import Command, positive_float
from edgecnn.core.errors import UserError


def add(p) -> None:
    from edgecnn.deploy.release_files import DEFAULT_HEALTH_PORT
    from edgecnn.deploy.rollout import DeployOptions

    defaults = DeployOptions()
    p.add_argument("hosts", nargs="+", metavar="USER@HOST", help="the devices (several: deployed in parallel, one "
                   "table); the ssh user is root or has passwordless sudo")
    what = p.add_argument_group("what runs there (one of)")
    what.add_argument("--config", default=None, metavar="FILE.yaml", help="a run config (edgecnn run --config): "
                      "validated here, copied with its model files")
    what.add_argument("--model", default=None, metavar="FILE", help="one camera: this model (default: the bundled "
                      "one) on --source")
    what.add_argument("--source", default=None, metavar="URI", help="one camera: the device's camera:N, "
                      "/dev/videoN, rtsp://... (default camera:0)")
    what.add_argument("--backend", default=None, help="one camera: the model's backend")
    what.add_argument("--threads", type=int, default=None, help="one camera: inference threads")
    what.add_argument("--conf", type=float, default=None, help="one camera: detector score threshold")
    what.add_argument("--track", default=None, metavar="TRACKER", help="one camera: track detections")
    action = p.add_argument_group("instead of deploying (one of)").add_mutually_exclusive_group()
    action.add_argument("--status", action="store_true", help="release, state, uptime, restarts, and each camera's "
                        "state, FPS and dropped frames from its /healthz and /metrics")
    action.add_argument("--logs", action="store_true", help="the service's journal (-f follows it)")
    action.add_argument("--rollback", action="store_true", help="back to the previous healthy release")
    action.add_argument("--stop", action="store_true", help="stop the service; it no longer starts at boot "
                        "(a deploy or --rollback starts it again)")
    action.add_argument("--remove", action="store_true", help="remove the service, its user, releases, venvs, "
                        "outputs (/var/lib/SERVICE) and cache: the device as before the first deploy")
    p.add_argument("--json", action="store_true", help="each host's answer as one JSON line instead of the table "
                   "(with the device's timings)")
    p.add_argument("-f", "--follow", action="store_true", help="with --logs: follow the journal")
    p.add_argument("--lines", type=int, default=50, metavar="N", help="with --logs: the last N lines (default 50)")
    ssh = p.add_argument_group("reaching the device")
    ssh.add_argument("--ssh-config", default=None, metavar="FILE", help="an ssh_config (port, identity, known hosts)")
    ssh.add_argument("--connect-timeout", type=positive_float, default=defaults.connect_timeout, metavar="S")
    ssh.add_argument("--python", default=defaults.python, metavar="PY", help="the device's Python 3.9+ that makes "
                     "the venv (default python3)")
    where = p.add_argument_group("the service")
    where.add_argument("--name", default=defaults.name, help="another service beside the default one: "
                       "edgecnn-NAME.service, with its own user, root and default health port")
    where.add_argument("--root", default=None, metavar="DIR", help="its directory on the device (default "
                       "/opt/edgecnn, /opt/edgecnn-NAME with --name)")
    where.add_argument("--health-port", type=int, default=None, metavar="PORT", help="/healthz and /metrics on the "
                       f"device's loopback where the config has no health: (default {DEFAULT_HEALTH_PORT}; with "
                       "--name, a port after it chosen by the name)")
    where.add_argument("--timeout", type=positive_float, default=defaults.timeout, metavar="S", help="for a new "
                       "release to become healthy before it is rolled back (default "
                       f"{defaults.timeout:.0f})")
    where.add_argument("--watchdog-sec", type=int, default=defaults.watchdog_seconds, metavar="S", help="systemd "
                       "restarts the service when no result came for this long (default "
                       f"{defaults.watchdog_seconds})")
    where.add_argument("--start-timeout", type=int, default=defaults.start_seconds, metavar="S", help="for the "
                       f"first result after a start, at boot too (default {defaults.start_seconds})")
    where.add_argument("--group", action="append", default=[], metavar="GROUP", help="a further supplementary "
                       "group of the service's user, for an accelerator's device file (video and render are "
                       "added where they exist)")
    where.add_argument("--allow-ungated", action="store_true", help="deploy a model whose card records no gate "
                       "(or that has no card); a failed gate or a digest mismatch is still refused")
    install = p.add_argument_group("installing edgecnn there (at this edgecnn's version)")
    install.add_argument("--wheel", nargs="?", const="", default=None, metavar="FILE.whl", help="copy a wheel "
                         "from here instead of installing from the device's package index; without FILE, one "
                         "built from this checkout")
    install.add_argument("--wheelhouse", default=None, metavar="DIR", help="with --wheel: wheels of the "
                         "dependencies for the device, copied too; pip then uses nothing else")
    install.add_argument("--system-site-packages", action="store_true", help="the venv sees the device's system "
                         "packages (Raspberry Pi OS: apt's picamera2, numpy, OpenCV)")


def _one_camera_config(args, directory: str) -> str:
    import os

    import yaml

    from edgecnn.deploy.release_files import one_camera_config

    if args.model is not None and not os.path.isfile(args.model):
        raise UserError(f"--model: no such file: {args.model}")
    camera = {"track": args.track} if args.track else {}
    data = one_camera_config(args.model, args.source or "camera:0",
                             {"backend": args.backend, "threads": args.threads, "conf": args.conf, "camera": camera})
    path = os.path.join(directory, "deploy.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return path


def run(args) -> int:
    import tempfile

    from edgecnn.deploy.rollout import DeployOptions, Rollout
    from edgecnn.deploy.status_table import outcome_table, status_table

    options = DeployOptions(name=args.name, root=args.root, python=args.python, ssh_config=args.ssh_config,
                            connect_timeout=args.connect_timeout, wheel=args.wheel, wheelhouse=args.wheelhouse,
                            system_site_packages=args.system_site_packages, timeout=args.timeout,
                            watchdog_seconds=args.watchdog_sec, start_seconds=args.start_timeout,
                            health_port=args.health_port, groups=list(args.group), allow_ungated=args.allow_ungated)
    one_camera = any(value is not None for value in (args.model, args.source, args.backend, args.threads, args.conf,
                                                      args.track))
    acting = args.status or args.logs or args.rollback or args.stop or args.remove
    if args.follow and not args.logs:
        raise UserError("-f follows the journal: give it with --logs")
    if acting and (args.config or one_camera):
        raise UserError("--status, --logs, --rollback, --stop and --remove act on what is deployed: leave out "
                        "--config and the one-camera options")
    if not acting and args.config and one_camera:
        raise UserError("give either --config FILE.yaml or the one-camera options (--model, --source, ...), not both")
    rollout = Rollout(options)
    if args.logs:
        return rollout.logs(args.hosts, args.lines, args.follow)
    if acting:
        name = "status" if args.status else "rollback" if args.rollback else "stop" if args.stop else "remove"
        results = rollout.action(args.hosts, name)
        _show(results, args.json, status_table if args.status else outcome_table)
    else:
        with tempfile.TemporaryDirectory(prefix="edgecnn-deploy-") as directory:
            config = args.config or _one_camera_config(args, directory)
            results = rollout.deploy(args.hosts, config)
        _show(results, args.json, outcome_table)
    return exit_code(results)


def _show(results, as_json: bool, table) -> None:
    import json

    from edgecnn.core.redact import redact_values

    if as_json:
        for result in results:
            print(json.dumps(redact_values(result)))
        return
    print(table(results))
    for result in results:
        for line in result.get("logs") or []:
            print(f"  {result['host']} | {line}")


def exit_code(results) -> int:
    """2 (or 3) when a host refused the input, 1 when a release did not become healthy
    there (rolled back, or stopped on a first deploy), 0 when every host did what was asked."""
    codes = [result.get("exit_code", 0) for result in results]
    if any(codes):
        return max(codes)
    not_kept = any(result.get("status") in ("failed", "unhealthy") or result.get("failed_release")
                   for result in results)
    return 1 if not_kept else 0


COMMAND = Command(path=("deploy",), help="install a config (or one camera) as a systemd service on devices over "
                  "ssh, with health checks and rollback", add=add, run=run,
                  description="Copy a run config and its models to each device, install edgecnn[runtime] in a "
                  "venv there, run it as a systemd service (restarted on failure and by its watchdog), and switch "
                  "to the new release only once its /healthz is 200; otherwise roll back and say why.")

"""`edgecnn run`: models, cameras and sinks wired together, with a summary at exit.

A run is a RunPlan (edgecnn.runtime.plan): the one-camera command line and a config
file of several cameras run the same way.

- Each model is loaded once; the cameras that name it share it. Frames of cameras that
  share a model go through it in one batched call where its file takes a batch and
  batching pays here (measured at start), otherwise in turn on its instances: one
  interpreter per core by default, each inferring a different camera's frame at the same
  time on a thread of its own (a lane); the summary says which.
- Each camera is read on a thread of its own into a one-frame slot
  (edgecnn.runtime.cameras): a lane takes the waiting cameras in rotation, at most one
  frame of each per round and a camera in one lane at a time (its frames stay in
  order), so a 30 FPS camera never starves a 5 FPS one, and a camera that stalls,
  disconnects or ends never holds up the others.
- Each sink runs on its own thread behind a bounded queue
  (edgecnn.runtime.delivery.QueuedSink); per-camera sinks get that camera's results,
  run-wide ones (one JSON file for every camera, the web view, publishers) all of them,
  each record carrying its camera's name.
- Ctrl-C, SIGTERM and SIGHUP end a run the same way: the sinks are drained for at most
  DRAIN_SECONDS (said as it happens), the video is finalised, the summary written; a
  second signal stops draining, still finalising what is on disk.

Progress and the summary go to stderr, so `--json -` leaves stdout pure JSON lines.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from edgecnn.core.errors import UserError
from edgecnn.runtime.card_options import CardOptions
from edgecnn.runtime.plan import DEFAULT_MODEL, CameraPlan, ModelPlan, RunPlan
from edgecnn.runtime.service_notify import ServiceNotifier
from edgecnn.runtime.sources import stderr_log

DRAIN_SECONDS = 10.0  # the most a stopping run waits for its sinks to write what is queued
EXIT_SKIPPED = 4  # the exit code of a run that went on past inputs it could not decode


@dataclass
class RunOptions:
    """The one-camera command line's options (`edgecnn run` without --config)."""

    model: Optional[str] = None  # None: the bundled model
    source: Optional[str] = None  # URI; None with camera None: demo
    camera: Optional[int] = None
    backend: str = "auto"
    threads: Optional[int] = None
    max_frames: Optional[int] = None
    realtime: bool = False
    conf: float = 0.25
    iou: Optional[float] = None  # NMS overlap threshold; None: edgecnn.runtime.nms.NMS_IOU
    card: CardOptions = field(default_factory=CardOptions)
    # sink option values by option name (edgecnn.runtime.sinks), e.g. {"json": "-", "save": "out.mp4"}
    sinks: Dict[str, Any] = field(default_factory=dict)
    callbacks: List[Callable] = field(default_factory=list)  # fn(image, result) per frame
    track: Optional[str] = None  # a tracker's name (edgecnn.runtime.trackers); None: no tracking
    # what the tasks' records carry, by record option (a segmenter's masks="contours"): None: the task's default
    records: Dict[str, Any] = field(default_factory=dict)
    strict: bool = False  # an input that cannot be decoded ends the run instead of being counted
    zones: List[str] = field(default_factory=list)  # --zone NAME=x1,y1,...[:OPTION=VALUE,...] (edgecnn.runtime.analytics)
    lines: List[str] = field(default_factory=list)  # --line NAME=x1,y1,x2,y2[:OPTION=VALUE,...]
    verify: bool = True  # check the model's weights against its card's digest
    health: Optional[str] = None  # HOST:PORT serving only /healthz and /metrics (edgecnn.runtime.health)


def source_uri(options: RunOptions) -> str:
    if options.camera is not None and options.source is not None:
        raise UserError("give either --camera N or --source URI, not both")
    if options.camera is not None:
        if options.camera < 0:
            raise UserError(f"--camera takes an index >= 0, got {options.camera}")
        return f"camera:{options.camera}"
    return options.source if options.source is not None else "demo"


def plan_from_options(options: RunOptions) -> RunPlan:
    """The one-camera command line as a one-camera plan."""
    model = ModelPlan(path=options.model, backend=options.backend, threads=options.threads, conf=options.conf,
                      iou=options.iou, card=options.card, verify=options.verify)
    from edgecnn.runtime.analytics.specs import parse_options

    camera = CameraPlan(source=source_uri(options), track=options.track, realtime=options.realtime,
                        sinks=dict(options.sinks), max_frames=options.max_frames,
                        zones=parse_options(options.zones, "--zone"), lines=parse_options(options.lines, "--line"))
    return RunPlan(models={DEFAULT_MODEL: model}, cameras={"camera": camera}, records=dict(options.records),
                   callbacks=list(options.callbacks), strict=options.strict, health=options.health, single=True)


def record_options(given: Dict[str, Any]) -> Dict[str, Any]:
    """The record options given, each checked against the tasks' declarations (an
    unknown one is one line listing the known ones); those not given are left out, so
    each task's own default applies."""
    from edgecnn.core.task import record_option_specs

    specs = record_option_specs()
    unknown = sorted(set(given) - set(specs))
    if unknown:
        raise UserError(f"unknown record option {unknown[0]!r}; known: {', '.join(specs) or 'none'}")
    chosen = {}
    for name, value in given.items():
        if value is None:
            continue
        choices = specs[name].get("choices")
        if choices is not None and value not in choices:
            raise UserError(f"--{name.replace('_', '-')} must be one of {', '.join(choices)}, got {value!r}")
        chosen[name] = value
    return chosen


def check_sink_values(values: Dict[str, Any], where: str = "") -> None:
    """Unknown sink options and values that cannot work: one line before anything opens."""
    from edgecnn.runtime.sinks import sink_types

    kinds = sink_types()
    known = [dest for kind in kinds for dest in kind.options]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(f"{where}unknown sink option {unknown[0]!r}; known: {', '.join(known)}")
    for kind in kinds:
        try:
            kind.check(values)
        except UserError as exc:
            raise UserError(f"{where}{exc}") from None


def run(options, log: Callable[[str], None] = stderr_log, started: Optional[float] = None) -> dict:
    """Run to the end of the sources, their --max-frames, a closed window or a stop signal;
    returns the final statistics (one camera: StreamStats.snapshot() plus
    first_result_ms; several: each camera's under "cameras", and the totals)."""
    plan = options if isinstance(options, RunPlan) else plan_from_options(options)
    return Run(plan, log).execute(time.perf_counter() if started is None else started)


class StopSignals:
    """SIGTERM and SIGHUP (what a service manager sends) end the run as Ctrl-C does: the
    first raises KeyboardInterrupt in the run's loop; once the run is stopping, any
    further signal (Ctrl-C too) only sets `forced`, so that finalising files is never
    interrupted."""

    SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s)

    def __init__(self) -> None:
        self.stopping = False
        self.forced = threading.Event()
        self.received: Optional[str] = None
        self._previous: Dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:
        if self.stopping:
            self.forced.set()
            return
        self.received = signal.Signals(signum).name
        raise KeyboardInterrupt(self.received)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def draining(self) -> None:
        """From here on a signal forces the end instead of raising."""
        self.stopping = True
        if threading.current_thread() is threading.main_thread():
            self._previous.setdefault(signal.SIGINT, signal.getsignal(signal.SIGINT))
            signal.signal(signal.SIGINT, self._handler)

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


class Run:
    def __init__(self, plan: RunPlan, log: Callable[[str], None]) -> None:
        self.plan, self.log = plan, log
        self.feeds: Dict[str, Any] = {}
        self.camera_sinks: Dict[str, List[Any]] = {}
        self.run_sinks: List[Any] = []
        self.first_result: Optional[float] = None
        self.metrics: Any = None  # edgecnn.runtime.metrics.RunMetrics: what /metrics shows
        self.health: Any = None  # the --health server, while the run goes on
        self._states: Dict[str, str] = {}  # each camera's state as the run-wide sinks last heard it
        self.stop_requested = threading.Event()  # set from another thread: the run ends after its current round
        self.places: Dict[str, Any] = {}  # camera -> its zones and lines (edgecnn.runtime.analytics.stage)
        self.service = ServiceNotifier(None)  # systemd's READY, WATCHDOG and STOPPING, once the run starts
        self.inference_order: Dict[str, dict] = {}  # model -> its cameras, batched or in turn, and why
        self._run_sinks_lock = threading.Lock()

    # ------------------------------------------------------------------ checks and set-up

    def _check(self) -> Dict[str, Any]:
        plan = self.plan
        if not plan.cameras:
            raise UserError("the run names no camera")
        records = record_options(plan.records)
        from edgecnn.runtime.sinks import sink_types

        run_only = {dest for kind in sink_types() if kind.scope == "run" for dest in kind.options} \
            if not plan.single else set()
        for name, camera in plan.cameras.items():
            for dest in camera.sinks:
                if dest in run_only:
                    raise UserError(f"camera {name}: --{dest} is for the whole run, not one camera")
            if camera.max_frames is not None and camera.max_frames < 1:
                raise UserError(f"--max-frames must be >= 1, got {camera.max_frames}")
            if camera.model not in plan.models:
                raise UserError(f"camera {name} names model {camera.model!r}; known: {', '.join(plan.models)}")
            check_sink_values(camera.sinks, "" if plan.single else f"camera {name}: ")
        check_sink_values(plan.sinks)
        if plan.health is not None:
            from edgecnn.runtime.http_server import parse_address
            from edgecnn.runtime.metrics import require_client

            parse_address(plan.health, f"{plan.source_file}: health" if plan.source_file else "--health")
            require_client()
        return records

    def _claim_outputs(self):
        """Every file the run writes, checked and locked before any model loads."""
        from edgecnn.runtime.outputs import OutputClaims
        from edgecnn.runtime.sinks import sink_types

        inputs = [camera.source.split("?")[0] for camera in self.plan.cameras.values()]
        inputs += [model.path for model in self.plan.models.values() if model.path]
        inputs += [self.plan.source_file] if self.plan.source_file else []
        claims = OutputClaims(inputs)
        try:
            for kind in (kind for kind in sink_types() if kind.options):
                for name, camera in self.plan.cameras.items():
                    what = f"--{next(iter(kind.options))}" if self.plan.single else \
                        f"camera {name}'s {next(iter(kind.options))}"
                    for path in kind.outputs(camera.sinks):
                        claims.claim(path, what)
                    for path in kind.directories(camera.sinks):
                        claims.claim_directory(path, what)
                for path in kind.outputs(self.plan.sinks):
                    claims.claim(path, f"--{next(iter(kind.options))}")
                for path in kind.directories(self.plan.sinks):
                    claims.claim_directory(path, f"--{next(iter(kind.options))}")
        except BaseException:
            claims.release()
            raise
        return claims

    def _load_models(self) -> Dict[str, Any]:
        from edgecnn.runtime.model import load
        from edgecnn.runtime.nms import NMS_IOU

        used = {camera.model for camera in self.plan.cameras.values()}
        models = {}
        for name, spec in self.plan.models.items():
            if name not in used:
                continue
            if spec.loaded is not None:
                models[name] = spec.loaded
                continue
            where = self.plan.locations.get(f"models.{name}")
            sharing = len(self._cameras_of(name))
            # Without threads named, a shared model's first instance gets every core: the
            # batching measurement needs them, and _instances() splits them afterwards
            threads = spec.threads if spec.threads is not None or sharing < 2 else (os.cpu_count() or 1)
            try:
                models[name] = load(spec.path, backend=spec.backend, threads=threads, card=spec.card,
                                    conf_threshold=spec.conf, iou_threshold=NMS_IOU if spec.iou is None else spec.iou,
                                    log=None, **({} if spec.verify else {"verify": False}))
            except UserError as exc:
                raise UserError(f"{where}: models.{name}: {exc}" if where else exc) from None
        return models

    def _open_feeds(self, models: Dict[str, Any], wakeup: threading.Condition) -> None:
        """Each camera's source opened now, so that a source that cannot work is an error
        at start; a live camera that is merely offline is retried when the plan says so."""
        from edgecnn.runtime.cameras import CameraFeed
        from edgecnn.runtime.sources import open_source, source_for

        for name, camera in self.plan.cameras.items():
            where = self.plan.locations.get(f"cameras.{name}")
            prefix = "" if self.plan.single else (f"{where}: cameras.{name}: " if where else f"camera {name}: ")
            log = self.log if self.plan.single else (lambda message, n=name: self.log(f"camera {n}: {message}"))
            model = models[camera.model]
            try:
                kind = source_for(camera.source)
                kind.split(camera.source)  # a malformed option is an error even for a camera that is offline
            except UserError as exc:
                raise UserError(f"{prefix}{exc}") from None
            try:
                source = open_source(camera.source, realtime=camera.realtime, log=log)
            except UserError as exc:
                if not (self.plan.retry_at_start and kind.live):
                    raise UserError(f"{prefix}{exc}") from None
                self.log(f"camera {name}: {exc}; retrying until it opens")
                source = None
            feed = CameraFeed(name, camera.source, realtime=camera.realtime, log=self.log, wakeup=wakeup,
                              prepare=model.preprocess, source=source)
            self.feeds[name] = feed

    def _open_sinks(self, models, stats, records) -> None:
        from edgecnn.runtime.delivery import QueuedSink
        from edgecnn.runtime.sinks import SinkContext, sink_types
        from edgecnn.runtime.sinks.callback import CallbackSink

        kinds = sink_types()
        live = any(feed.source is None or feed.source.live for feed in self.feeds.values())
        clip_dirs = self._clip_dirs()
        for name, camera in self.plan.cameras.items():
            feed = self.feeds[name]
            camera_stats = stats.cameras[name]
            context = SinkContext(source_name=feed.source.name if feed.source else camera.source,
                                  fps=feed.fps or 30.0, stats=camera_stats, log=self.log, record_options=records,
                                  cards={name: models[camera.model].card.to_dict()}, metrics=self.metrics,
                                  camera="" if self.plan.single else name, places=self._described(name),
                                  clip_dirs=clip_dirs)
            chosen = [(kind, camera.sinks) for kind in kinds if kind.wanted(camera.sinks)]
            if self.plan.single and not chosen and not self.plan.callbacks and not any(
                    kind.wanted(self.plan.sinks) for kind in kinds):
                # the default sink, with whatever else was given for it
                chosen = [(kind, {**camera.sinks, **kind.default}) for kind in kinds if kind.default is not None]
            opened = self.camera_sinks.setdefault(name, [])
            for kind, values in chosen:  # each behind its own queue and thread; a live source never waits for one
                opened.extend(QueuedSink(sink, sink.name or kind.name, kind.queue_size, camera_stats,
                                         wait_when_full=kind.records_the_run and not (feed.source is None or
                                                                                      feed.source.live))
                              for sink in kind.open(values, context))
        run_stats = stats.cameras["camera"] if self.plan.single else stats
        context = SinkContext(source_name=self._run_name(), fps=max((f.fps for f in self.feeds.values()), default=30.0)
                              or 30.0, stats=run_stats, log=self.log, record_options=records,
                              cards={name: models[camera.model].card.to_dict() for name, camera
                                     in self.plan.cameras.items()}, metrics=self.metrics,
                              places={key: value for name in self.plan.cameras
                                      for key, value in self._described(name).items()}, clip_dirs=clip_dirs)
        for kind in kinds:
            if kind.wanted(self.plan.sinks):
                self.run_sinks.extend(QueuedSink(sink, sink.name or kind.name, kind.queue_size, run_stats,
                                                 wait_when_full=kind.records_the_run and not live)
                                      for sink in kind.open(self.plan.sinks, context))
        self.run_sinks.extend(QueuedSink(CallbackSink(fn), "callback", stats=run_stats) for fn in self.plan.callbacks)

    def _clip_dirs(self) -> Dict[str, str]:
        """{camera: the directory its clips go to} ("" for a one-camera run's, or for clips
        named for the whole run), for the web view's /clips."""
        from edgecnn.runtime.sinks import get_sink

        clips = get_sink("clips")
        found = {("" if self.plan.single else name): clips.directories(camera.sinks)[0]
                 for name, camera in self.plan.cameras.items() if clips.directories(camera.sinks)}
        if clips.directories(self.plan.sinks):
            found.setdefault("", clips.directories(self.plan.sinks)[0])
        return found

    def _described(self, name: str) -> Dict[str, Any]:
        """{camera: its zones and lines}, the camera "" in a one-camera run (whose topics
        and records name no camera)."""
        stage = self.places.get(name)
        return {("" if self.plan.single else name): stage.described()} if stage is not None else {}

    def _open_places(self, models) -> None:
        """Each camera's zones and lines (edgecnn.runtime.analytics), checked against its
        model's labels; a camera with some needs tracks, so it is tracked."""
        from edgecnn.runtime.analytics.stage import PlaceStage
        from edgecnn.runtime.trackers import DEFAULT_TRACKER

        for name, camera in self.plan.cameras.items():
            if not camera.zones and not camera.lines:
                continue
            model = models[camera.model]
            where = "" if self.plan.single else f"camera {name}: "
            if not model.task_spec.trackable:
                raise UserError(f"{where}zones and lines need a detector; this model's task is {model.card.task}")
            try:
                self.places[name] = PlaceStage(camera.zones, camera.lines, model.labels)
            except UserError as exc:
                raise UserError(f"{where}{exc}") from None
            if camera.track in (None, False):
                camera.track = DEFAULT_TRACKER
                self.log(f"{where}zones and lines follow tracks: tracking with {DEFAULT_TRACKER}")

    def _opened_sinks(self) -> List[Any]:
        """(camera, sink) of every open sink, camera "" for the run-wide ones: for /metrics."""
        return [(name, sink) for name, group in self.camera_sinks.items() for sink in group] + \
            [("", sink) for sink in self.run_sinks]

    def _open_health(self, stats) -> None:
        """--health: /healthz and /metrics on their own server, from before the cameras start."""
        from edgecnn.runtime.health import HealthServer

        self.health = HealthServer(self.plan.health, stats, self.metrics, log=self.log)
        self.log(f"health: {self.health.url}healthz and /metrics" + ("" if self.health.loopback else
                 " (no token: states and counters only, for probes and scrapers)"))

    def _run_name(self) -> str:
        if self.plan.single:
            feed = next(iter(self.feeds.values()))
            return feed.source.name if feed.source else feed.uri
        return f"{len(self.feeds)} cameras"

    def _cameras_of(self, model: str) -> List[str]:
        return [name for name, camera in self.plan.cameras.items() if camera.model == model]

    def _batching(self, models) -> Dict[str, bool]:
        """Per model: whether its cameras' frames are inferred in one call (measured)."""
        decisions = {}
        for name, model in models.items():
            cameras = self._cameras_of(name)
            spec = self.plan.models[name]
            if len(cameras) < 2:
                decisions[name] = False
                continue
            if spec.batch == "off":
                decisions[name], why = False, "batching off"
            else:
                decisions[name], why = model.batching(len(cameras))
                if spec.batch == "on" and not decisions[name] and model.backend.dynamic_batch:
                    decisions[name], why = True, f"batching on ({why})"
            self.inference_order[name] = {"cameras": len(cameras), "batched": decisions[name], "why": why,
                                          "instances": 1}
        return decisions

    def _instances(self, models, batched) -> Dict[str, List[Any]]:
        """Per model: its interpreters. A model that several cameras share and that is not
        batched gets one instance per core (at most one per camera), each with
        cores // instances threads, unless its threads are named: at 320x240 one
        instance of 2 threads kept up with 12 cameras, two of 1 thread with more
        (RESULTS "Throughput"). `instances: N` in the config sets the count."""
        cores = os.cpu_count() or 1
        instances = {}
        for name, model in models.items():
            spec, cameras = self.plan.models[name], self._cameras_of(name)
            count = spec.instances
            if count is None:
                count = 1 if (batched[name] or spec.threads is not None or spec.loaded is not None) else \
                    max(1, min(cores, len(cameras)))
            count = min(count, max(1, len(cameras)))
            if batched[name] and count > 1:
                count = 1  # one batched call already takes every camera's frame
            pool = [model]
            if count > 1:
                # threads named: as load() gave them to the first (at most the cores here)
                threads = model.backend.threads if spec.threads is not None else max(1, cores // count)
                pool = [model.instance(threads) for _ in range(count)]
            instances[name] = pool
            models[name] = pool[0]  # the first instance stands for the model (its card, preprocessing)
            if len(cameras) > 1:
                entry = self.inference_order[name]
                entry["instances"] = count
                threads = pool[0].backend.threads
                lanes = f" on {count} instances of {threads or 'default'} thread{'' if threads == 1 else 's'}" \
                    if count > 1 else ""
                self.log(f"model {name}: {len(cameras)} cameras {'batched' if entry['batched'] else 'in turn'}"
                         f"{lanes} ({entry['why']})")
        return instances

    # ------------------------------------------------------------------ the run

    def execute(self, started: float) -> dict:
        from edgecnn.runtime.metrics import RunMetrics
        from edgecnn.runtime.stats import RunStats
        from edgecnn.runtime.tracking import open_tracking

        self.service = ServiceNotifier.from_environment()
        records = self._check()
        claims = self._claim_outputs()
        wakeup = threading.Condition()
        stats = RunStats(self.plan.cameras)
        self.metrics = RunMetrics(stats, self._opened_sinks)
        signals = StopSignals()
        completed, reason = False, None
        try:
            models = self._load_models()
            for name, camera in self.plan.cameras.items():
                if camera.track not in (None, False) and not models[camera.model].task_spec.trackable:
                    task = models[camera.model].card.task
                    raise UserError(f"tracking needs a detector; this model's task is {task}")
            self._open_places(models)
            batched = self._batching(models)  # measured before any camera opens: no frame waits on it
            instances = self._instances(models, batched)
            self._open_feeds(models, wakeup)
            tracking = {name: open_tracking(camera.track, self.feeds[name].fps or 30.0)
                        for name, camera in self.plan.cameras.items()}
            if self.plan.health is not None:
                self._open_health(stats)
            self._open_sinks(models, stats, records)
            self._announce(models)
            with signals:
                try:
                    for feed in self.feeds.values():
                        feed.start()
                    self._run_lanes(instances, tracking, stats, batched, wakeup, started)
                    completed = True
                except KeyboardInterrupt:
                    completed = True  # stopping a live run by hand, or by a service manager, is a normal end
                    reason = signals.received or "interrupted"
                    self.log("interrupted" if reason == "interrupted" else f"stopping on {reason}")
                finally:
                    signals.draining()
                    self.service.stopping()
                    self._stop(completed, signals)
        finally:
            for feed in self.feeds.values():
                feed.stop()
            if self.health is not None:
                self.health.close()
            claims.release()
        return self._summary(stats, started, reason)

    def _announce(self, models) -> None:
        for name, model in models.items():
            if model.choice:
                self.log(model.choice)
        import os

        from edgecnn.core.redact import redact

        for name, camera in self.plan.cameras.items():
            model = models[camera.model]
            what = (f"{os.path.basename(model.backend.path)} ({model.task}, {len(model.labels)} labels, "
                    f"{model.backend.ran_on_text()})")
            feed = self.feeds[name]
            where = redact(feed.source.name if feed.source else camera.source)
            self.log(f"running {what} on {where}" if self.plan.single else f"camera {name}: running {what} on {where}")

    def _run_lanes(self, instances, tracking, stats, batched, wakeup, started) -> None:
        """One lane (thread) per model instance; this thread tells systemd, the run's
        states and the sinks how the run goes until every lane has ended. The first
        error in a lane ends the run and is raised here."""
        board = _Board(self.plan, self.feeds)
        lanes = []
        for model_name, pool in instances.items():
            for index, model in enumerate(pool):
                lane = threading.Thread(target=self._lane, name=f"lane {model_name}/{index}", daemon=True, args=(
                    board, model_name, model, len(pool), tracking, stats, batched[model_name], wakeup, started))
                lanes.append(lane)
        for lane in lanes:
            lane.start()
        try:
            while any(lane.is_alive() for lane in lanes):
                self._update_states(stats)
                self.service.round(stats)
                self._tell_states()
                if self.stop_requested.is_set():
                    board.halt.set()
                board.halt.wait(0.05)
        finally:
            board.halt.set()
            with wakeup:
                wakeup.notify_all()
            for lane in lanes:
                lane.join()
        self._update_states(stats)
        self.service.round(stats)
        self._tell_states()
        if board.error is not None:
            raise board.error

    def _lane(self, board: "_Board", model_name, model, instances: int, tracking, stats, batched: bool, wakeup,
              started) -> None:
        """Rounds over the cameras of one model: the waiting ones (all of them on a lone or
        batched instance, one at a time where instances share the cameras) are inferred,
        then the results go to each camera's tracker, statistics and sinks."""
        cameras = self._cameras_of(model_name)
        take_all = batched or instances == 1
        try:
            while not board.halt.is_set():
                with wakeup:
                    taken = board.take(model_name, cameras, take_all)
                    if not taken:
                        if board.finished(cameras):
                            return
                        wakeup.wait(0.1)
                        continue
                    wakeup.notify_all()  # a file's reader waits for its slot to empty
                try:
                    self._check_strict()
                    results = model.predict_frames([frame for _, frame in taken], batched)
                    for (name, frame), result in zip(taken, results):
                        self._deliver(name, frame, result, tracking[name], stats.cameras[name],
                                      len(taken) if batched else 1, started)
                finally:
                    with wakeup:
                        board.release([name for name, _ in taken])
                        wakeup.notify_all()
                if any(sink.stop for sinks in self.camera_sinks.values() for sink in sinks) or \
                        any(sink.stop for sink in self.run_sinks) or board.finished(list(self.feeds), done_only=True):
                    board.halt.set()
                    return
        except BaseException as exc:  # the run's error: raised by _run_lanes
            board.fail(exc)

    def _deliver(self, name, frame, result, tracking, camera_stats, batch, started) -> None:
        if self.first_result is None:
            self.first_result = (time.perf_counter() - started) * 1000
        if not self.plan.single:
            result.camera = name
        if tracking is not None:
            tracking(result)
            places = self.places.get(name)
            if places is not None:
                places(result, frame.image.shape[:2])
            result.frame_age_ms = (time.perf_counter() - frame.capture_clock) * 1000  # tracked, too
        feed = self.feeds[name]
        camera_stats.add(result, feed.source_dropped, feed.reconnects, getattr(feed.source, "status", "running"),
                         feed.skipped, batch)
        for sink in self.camera_sinks.get(name, ()):
            sink.write(frame.image, result)
        with self._run_sinks_lock:  # lanes deliver at the same time; the run-wide sinks hear one at a time
            for sink in self.run_sinks:
                sink.write(frame.image, result)

    def _update_states(self, stats) -> None:
        for name, feed in self.feeds.items():
            stats.cameras[name].source_changed(feed.state, feed.source_dropped, feed.reconnects, feed.skipped)

    def _tell_states(self) -> None:
        """The run-wide sinks hear of every change of a camera's state (a camera that
        stops delivering has no result to say so); a one-camera run's outputs stay as
        they were."""
        states = {name: feed.state for name, feed in self.feeds.items()}
        if not self.plan.single and states != self._states:
            self._states = states
            with self._run_sinks_lock:
                for sink in self.run_sinks:
                    sink.states_changed(dict(states))

    def _check_strict(self) -> None:
        if not self.plan.strict:
            return
        for feed in self.feeds.values():
            if feed.skipped:
                reason = getattr(feed.source, "last_skip", "") or "an input could not be decoded"
                raise UserError(f"{reason} (--strict)")

    def _stop(self, completed: bool, signals: StopSignals) -> None:
        """Stop the cameras, then drain and close every sink within DRAIN_SECONDS (a
        second signal ends the draining early); files are finalised either way."""
        for feed in self.feeds.values():
            feed.stop()
        sinks = [sink for group in self.camera_sinks.values() for sink in group] + self.run_sinks
        queued = sum(len(getattr(sink, "_queue", ())) for sink in sinks)
        began = time.monotonic()
        if signals.received or queued > 100:
            self.log(f"draining {queued} queued records (at most {DRAIN_SECONDS:.0f} s; a second signal "
                     f"stops draining, files are still finalised)")
        dropped, first_error = 0, None
        for sink in sinks:
            remaining = max(0.0, DRAIN_SECONDS - (time.monotonic() - began))
            try:
                dropped += sink.close(completed, timeout=remaining, abandon=signals.forced.is_set)
            except BaseException as exc:  # the first sink error is the run's; the other sinks still close
                first_error = first_error or exc
        if signals.received or queued > 100 or dropped:
            self.log(f"drained in {time.monotonic() - began:.1f} s" +
                     (f"; {dropped} records dropped at the stop" if dropped else ""))
        if first_error is not None:
            raise first_error

    # ------------------------------------------------------------------ summary

    def _summary(self, stats, started: float, reason: Optional[str]) -> dict:
        self._update_states(stats)
        first = f", first result {self.first_result:.0f} ms after start" if self.first_result is not None else ""
        if self.plan.single:
            camera = stats.cameras["camera"]
            summary = camera.snapshot()
            summary["first_result_ms"] = round(self.first_result, 1) if self.first_result is not None else None
            summary.pop("last", None)
            summary.pop("items", None)
            self.log(f"summary: {camera.summary()}{first}")
        else:
            snapshot = stats.snapshot()
            for name, camera in stats.cameras.items():
                self.log(f"summary {name} ({camera.state}): {camera.summary()}")
            summary = {"cameras": {name: {k: v for k, v in snap.items() if k not in ("last", "items")}
                                   for name, snap in snapshot["cameras"].items()},
                       "frames": snapshot["frames"], "fps": snapshot["fps"], "sink_dropped": snapshot["sink_dropped"],
                       "skipped": sum(c.skipped for c in stats.cameras.values()),
                       "first_result_ms": round(self.first_result, 1) if self.first_result is not None else None}
            summary["inference"] = dict(self.inference_order)
            order = "".join(f"; model {name}: {entry['cameras']} cameras "
                            f"{'batched' if entry['batched'] else 'in turn'}"
                            f"{' on %d instances' % entry['instances'] if entry['instances'] > 1 else ''}"
                            for name, entry in self.inference_order.items())
            self.log(f"summary: {len(stats.cameras)} cameras, {summary['frames']} frames{order}{first}")
        if reason:
            summary["stopped_by"] = reason
        for name, camera in self.plan.cameras.items():
            save = camera.sinks.get("save")
            if save and stats.cameras[name].frames:
                lost = stats.cameras[name].sink_dropped.get("video", 0)
                self.log(f"annotated video: {save}" + (f" ({lost} frames dropped: the encoder fell behind)"
                                                         if lost else ""))
        return summary


class _Board:
    """What the lanes share, read and changed under the run's wakeup condition: which
    camera is being inferred (a camera is in one lane at a time, so its frames, tracker
    and sinks stay in order), each camera's count against its --max-frames, each model's
    rotation, and the first error."""

    def __init__(self, plan: RunPlan, feeds: Dict[str, Any]) -> None:
        self.feeds = feeds
        self.busy: set = set()
        self.counts = {name: 0 for name in feeds}
        self.limits = {name: plan.cameras[name].max_frames for name in feeds}
        self.turns: Dict[str, int] = {}
        self.halt = threading.Event()
        self.error: Optional[BaseException] = None

    def done(self, name: str) -> bool:
        return self.limits[name] is not None and self.counts[name] >= self.limits[name]

    def take(self, model: str, cameras: List[str], take_all: bool) -> List[tuple]:
        """The next waiting cameras of a model from its rotation: all of them, or the first."""
        turn = self.turns.get(model, 0) % len(cameras)
        order = cameras[turn:] + cameras[:turn]
        ready = [name for name in order if name not in self.busy and not self.done(name)
                 and self.feeds[name].has_frame]
        if not ready:
            return []
        if not take_all:
            ready = ready[:1]
        self.turns[model] = (cameras.index(ready[-1]) + 1) % len(cameras)
        self.busy.update(ready)
        return [(name, self.feeds[name].take()) for name in ready]

    def release(self, names: List[str]) -> None:
        for name in names:
            self.busy.discard(name)
            self.counts[name] += 1

    def finished(self, cameras: List[str], done_only: bool = False) -> bool:
        """Every camera done with its frames (done_only), or also ended, and none in a lane."""
        return not (self.busy & set(cameras)) and all(
            self.done(name) or (not done_only and self.feeds[name].finished) for name in cameras)

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.halt.set()


def _places_by_camera(given, kind: str, cameras) -> Dict[str, dict]:
    """{camera: {place: spec}} from `model.stream(..., zones=...)` over several cameras:
    an entry that names its camera (`{"camera": "door", "points": ...}`, as a config
    file's top-level entries do) goes to that camera alone, any other to every camera."""
    placed: Dict[str, dict] = {name: {} for name in cameras}
    for place, spec in dict(given or {}).items():
        camera = spec.get("camera") if isinstance(spec, dict) else None
        if camera is None:
            for found in placed.values():
                found[place] = spec
        elif camera not in placed:
            raise UserError(f"{kind} {place}: no camera named {camera!r}; known: {', '.join(placed)}")
        else:
            placed[camera][place] = {key: value for key, value in spec.items() if key != "camera"}
    return placed


class CameraStream:
    """`model.stream(["camera:0", "camera:1"])` (or {name: uri}): every camera's
    (image, result) in one loop of the caller's, each result carrying its camera's name
    (`result.camera`). The cameras run as in `edgecnn run --config`: each read on its
    own thread, fair rounds, a camera that stalls never holds up the others; results
    wait in a bounded queue for the caller (the oldest dropped and counted when the
    caller falls behind). Closing it (or leaving a with-block, or the loop) stops them."""

    def __init__(self, model, sources, *, track=None, max_frames: Optional[int] = None, realtime: bool = False,
                 log: Callable[[str], None] = stderr_log, queue_size: int = 32, zones=None, lines=None) -> None:
        import collections

        names = dict(sources) if isinstance(sources, dict) else {f"camera{i}": str(uri)
                                                                for i, uri in enumerate(sources)}
        self._queue: "collections.deque" = collections.deque(maxlen=queue_size)
        self._ready = threading.Condition()
        self.dropped = 0
        places = {kind: _places_by_camera(given, kind, names) for kind, given in (("zones", zones), ("lines", lines))}
        plan = RunPlan(models={DEFAULT_MODEL: ModelPlan(loaded=model)},
                       cameras={name: CameraPlan(source=str(uri), track=track, realtime=realtime,
                                                 max_frames=max_frames, zones=places["zones"][name],
                                                 lines=places["lines"][name]) for name, uri in names.items()},
                       callbacks=[self._receive], retry_at_start=True)
        self.run = Run(plan, log)
        self.summary: Optional[dict] = None
        self.error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._serve, name="camera stream", daemon=True)
        self._thread.start()

    def _receive(self, image, result) -> None:
        with self._ready:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append((image, result))
            self._ready.notify_all()

    def _serve(self) -> None:
        try:
            self.summary = self.run.execute(time.perf_counter())
        except BaseException as exc:  # raised again in the caller's loop
            self.error = exc
        finally:
            with self._ready:
                self._ready.notify_all()

    def __iter__(self):
        try:
            while True:
                with self._ready:
                    while not self._queue and self._thread.is_alive():
                        self._ready.wait(0.1)
                    if not self._queue:
                        break
                    item = self._queue.popleft()
                yield item
            if self.error is not None:
                raise self.error
        finally:
            self.close()

    def close(self) -> None:
        self.run.stop_requested.set()
        self._thread.join(timeout=DRAIN_SECONDS + 10)

    def __enter__(self) -> "CameraStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

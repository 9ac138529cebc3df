"""``syncd run``: one loop owns the state; hints -> debounce -> rescan -> plan -> execute.

Watcher events are hints, never truth: a settled batch of hinted paths becomes the
directories and trees (``daemon_scope``) that the engine of ``syncd sync`` rescans and
compares with the state DB. A full pass at start and every ``rescan_interval`` catches
what the watcher missed; a pair that cannot be watched (inotify limits) is rescanned
periodically instead, at most 1/``FALLBACK_DUTY`` of the time.

No timer threads: the loop sleeps on the hint queue until the earliest deadline - the
debouncers', the next rescan, the next due retry of a failed file (each carries its own
growing ``next_try``), the next watchdog ping. A pass that could not finish (site
unreachable) is redone in full after a growing delay.

Stopping (SIGTERM/SIGINT or ``request_stop``): no new upload starts, retry waits are cut
short, uploads in flight get ``stop_grace`` seconds and are then abandoned before their
last byte (nothing stored, recorded as pending), the session disables the token. A
second signal abandons at once. SIGHUP reloads the config.
"""

from __future__ import annotations

import math
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

from syncd.config import Config, PairConfig
from syncd.daemon_process import daemon_engine, install_handlers
from syncd.daemon_report import DaemonReporter
from syncd.daemon_scope import retries_of, scope_of
from syncd.debounce import HINT_KINDS, Batch, Debouncer, HintKind
from syncd.engine import Engine, PassResult
from syncd.errors import AuthRefused, ConfigError, SyncdError
from syncd.lock import state_files
from syncd.log import get_logger
from syncd.log import preload as preload_logging
from syncd.metrics import MetricsSink, NullMetrics, metrics_for
from syncd.paths import IGNORE_FILE, IgnoreRules
from syncd.recovery import recover_intents
from syncd.systemd import Notifier
from syncd.watcher import Watcher

log = get_logger("syncd.daemon")

STOP_GRACE: Final = 20.0  # in-flight uploads after SIGTERM; TimeoutStopSec=30 keeps 10 s spare
FALLBACK_MIN_INTERVAL: Final = 2.0  # unwatched pairs: rescan at max(this, 5 x debounce, ...)
FALLBACK_DUTY: Final = 20.0  # ... and 20 x the last full pass: scanning stays under 5 % of time
PASS_BACKOFF: Final = (15.0, 900.0)  # an unfinished pass is redone after 15 s, doubling to 15 min
RETRY_GAP: Final = (1.0, 3600.0)  # retry passes of files still due are spaced 1 s, doubling
MAX_WAIT: Final = 3600.0  # longest single sleep (a SimpleQueue timeout must be finite)
_WAKE: Final = ("", "", "wake")  # a queue item that only interrupts the wait


@dataclass
class _PairLoop:
    pair: PairConfig
    debouncer: Debouncer
    rules: IgnoreRules
    next_full: float = math.inf  # a full pass of this pair is due (fallback, unfinished pass)
    retry_wall: float | None = None  # earliest next_try of a failed/pending file (wall clock)
    retry_not_before: float = -math.inf  # no retry pass before this (monotonic)
    retry_gap: float = RETRY_GAP[0]
    failures: int = 0  # consecutive unfinished passes
    full_seconds: float = 0.0  # how long the last full pass took
    waiting: tuple[int, int] = (0, 0)  # pending, failed files after the last pass
    last_error: str | None = None


class Daemon:
    """The service loop over one engine (one state DB, one remote) and the config's pairs."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        *,
        notifier: Notifier | None = None,
        metrics: MetricsSink | None = None,
        config_loader: Callable[[], Config] | None = None,
        max_watches: int | None = None,
        stop_grace: float = STOP_GRACE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.engine = engine
        self.notifier = notifier or Notifier.from_env()
        self.metrics: MetricsSink = metrics or NullMetrics()
        self.config_loader = config_loader
        self.max_watches = max_watches
        self.stop_grace = stop_grace
        self.clock = clock
        self.stop = engine.stop  # shared: the engine stops taking work when it is set
        self.hints: queue.SimpleQueue[tuple[str, str, str]] = queue.SimpleQueue()
        self.watcher: Watcher | None = None
        self.loops: dict[str, _PairLoop] = {}
        self.next_rescan = math.inf
        self._stop_signal: int | None = None
        self._reload_requested = False
        self._wall = engine.clock  # the engine's wall clock: files' next_try are in it
        self.reporter = DaemonReporter(self.notifier, self.metrics, self.stop, wall=self._wall,
                                       clock=clock)
        engine.reporter = self.reporter
        engine.clock = self.reporter.heartbeat_clock

    # -- lifecycle -------------------------------------------------------------------
    def run(self) -> int:
        """Start pass, READY, then the loop until stopped; returns the exit code."""
        restore = install_handlers(self._on_stop_signal, self.request_reload)
        try:
            return self._serve()
        finally:
            restore()

    def request_stop(self, grace: float | None = None) -> None:
        """Stop taking work; uploads in flight get ``grace`` seconds (default
        ``stop_grace``). Safe from other threads and from signal handlers."""
        limit = self.clock() + (self.stop_grace if grace is None else grace)
        self.reporter.abandon_at = min(self.reporter.abandon_at, limit)
        self.stop.set()  # nothing ever waits on this event, so no lock can be held
        self.hints.put(_WAKE)

    def request_reload(self) -> None:
        self._reload_requested = True
        self.hints.put(_WAKE)

    def wake(self) -> None:
        """Re-evaluate every deadline now (e.g. after the wall clock jumped)."""
        self.hints.put(_WAKE)

    @property
    def ready(self) -> bool:
        """True once READY=1 was sent: the start pass is done and the watches are set."""
        return self.reporter.ready

    def _on_stop_signal(self, signum: int) -> None:
        self._stop_signal = signum
        self.request_stop(0.0 if self.stop.is_set() else None)  # a second signal: abandon now

    def _serve(self) -> int:
        code = 0
        try:
            self._start(self.config)
            for loop in list(self.loops.values()):
                if not self.stop.is_set():
                    self._pass(loop, full=True)
            if not self.stop.is_set():
                self.reporter.ready = True
                self._publish()
                self.notifier.ready(self._status_text())
                log.info("daemon ready", pairs=len(self.loops))
            while not self.stop.is_set():
                self._wait_for_work()
                if self._reload_requested and not self.stop.is_set():
                    self._reload()
                if not self.stop.is_set():
                    self._run_due()
        except AuthRefused as exc:
            log.error("authorization refused", error=str(exc))
            code = exc.exit_code
        finally:
            self._shut_down(settle=code == 0)
        log.info("daemon stopped", exit_code=code)
        return code

    def _shut_down(self, *, settle: bool) -> None:
        log.info("stopping", signal=self._stop_signal)
        self.notifier.stopping("stopping")
        if self.watcher is not None:
            self.watcher.stop()
        state = self.engine.state
        try:
            for name in self.loops if settle else ():
                if state.intents(name):  # e.g. an upload abandoned in a lost-response check
                    recover_intents(state, self.engine.remote, name)
            state.set_meta("daemon:queue", None)
        except SyncdError as exc:  # the next start recovers; never mask the real exit cause
            log.warning("intents left for the next start", error=str(exc))

    def _start(self, config: Config) -> None:
        """Loops and watches for ``config``'s pairs; a loop whose pair and sync settings
        are unchanged is kept (with its queue), the others get a full pass."""
        old, old_sync = self.loops, self.config.sync
        self.config = self.engine.config = config
        sync, now = config.sync, self.clock()
        loops: dict[str, _PairLoop] = {}
        for pair in config.pairs:
            loop = old.get(pair.name)
            if loop is None or loop.pair != pair or sync != old_sync:
                loop = _PairLoop(pair, Debouncer(sync.debounce, sync.max_delay), self._rules(pair))
                loop.next_full = now if old else math.inf  # new or changed by a reload
            loops[pair.name] = loop
        self.loops = loops  # whole: watchdog's threads read it (``_ignored``)
        previous = self.watcher
        self.watcher = Watcher({p.name: p.local for p in config.pairs}, self._on_hint,
                               ignore=self._ignored, max_watches=self.max_watches)
        self.watcher.start()  # before the old one stops: no event falls in between
        if previous is not None:
            previous.stop()
        interval = sync.rescan_interval
        self.next_rescan = now + interval if interval > 0 else math.inf

    def _reload(self) -> None:
        self._reload_requested = False
        if self.config_loader is None:
            return
        try:
            config = self.config_loader()
        except SyncdError as exc:
            log.error("reload failed", error=str(exc))
            return
        if config.remote != self.config.remote or config.sync.state_db != self.config.sync.state_db:
            log.warning("restart needed", error="[remote] and state_db changes apply at restart")
        self.notifier.reloading()
        self._start(config)
        self.notifier.ready(self._status_text())
        log.info("config reloaded", pairs=len(self.loops))

    # -- hints and deadlines ---------------------------------------------------------
    def _rules(self, pair: PairConfig) -> IgnoreRules:
        sync = self.config.sync
        try:
            rules = IgnoreRules.load(pair.local, sync.ignore)
        except ConfigError as exc:  # the pass reports it; hints are just not filtered
            log.warning("ignore rules unreadable", pair=pair.name, error=str(exc))
            rules = IgnoreRules.from_patterns(pair.local, ())
        return rules.with_excluded(state_files(sync.state_db))  # our own DB writes: no hints

    def _ignored(self, pair: str, rel: str) -> bool:
        loop = self.loops.get(pair)  # read on watchdog's threads; loops are replaced whole
        if loop is None:
            return True
        rules = loop.rules
        return rules.ignored(rel, False, check_parents=True) and rules.ignored(
            rel, True, check_parents=True)

    def _on_hint(self, pair: str, rel: str, kind: HintKind) -> None:
        self.hints.put((pair, rel, kind))  # called on watchdog's threads

    def _wait_for_work(self) -> None:
        timeout = min(MAX_WAIT, max(0.0, self._next_deadline() - self.clock()))
        try:
            item = self.hints.get(timeout=timeout)
            while True:  # then everything queued meanwhile, without waiting
                self._add_hint(*item)
                item = self.hints.get_nowait()
        except queue.Empty:
            return

    def _add_hint(self, pair: str, rel: str, kind: str) -> None:
        loop = self.loops.get(pair)
        if loop is None or kind not in HINT_KINDS:
            return
        now = self.clock()
        if rel == IGNORE_FILE:  # the rules changed: what is uploaded may change anywhere
            loop.rules = self._rules(loop.pair)
            loop.next_full = min(loop.next_full, now + self.config.sync.debounce)
        loop.debouncer.add(rel, now, kind=cast(HintKind, kind))

    def _next_deadline(self) -> float:
        now = self.clock()
        deadlines = [self.next_rescan]
        for loop in self._loops_noting_fallback(now):
            settled = loop.debouncer.next_deadline()
            deadlines += [loop.next_full, self._retry_deadline(loop, now),
                          math.inf if settled is None else settled]
        if self.notifier.watchdog_enabled:
            deadlines.append(self.reporter.next_beat)
        return min(deadlines)

    def _loops_noting_fallback(self, now: float) -> list[_PairLoop]:
        fallback = self.watcher.fallback_pairs() if self.watcher is not None else set()
        for name in fallback:
            loop = self.loops.get(name)
            if loop is not None and loop.next_full == math.inf:
                loop.next_full = now + self._fallback_interval(loop)
        return list(self.loops.values())

    def _fallback_interval(self, loop: _PairLoop) -> float:
        debounce = self.config.sync.debounce
        return max(FALLBACK_MIN_INTERVAL, 5 * debounce, FALLBACK_DUTY * loop.full_seconds)

    def _retry_deadline(self, loop: _PairLoop, now: float) -> float:
        if loop.retry_wall is None:
            return math.inf
        return max(now + max(0.0, loop.retry_wall - self._wall()), loop.retry_not_before)

    # -- passes ----------------------------------------------------------------------
    def _run_due(self) -> None:
        now = self.clock()
        self.reporter.beat()
        rescan = now >= self.next_rescan
        if rescan:
            self.next_rescan = now + self.config.sync.rescan_interval
        for loop in self._loops_noting_fallback(now):
            if self.stop.is_set():
                return
            if rescan or now >= loop.next_full:
                loop.debouncer.clear()
                self._pass(loop, full=True)
                continue
            batch = loop.debouncer.due(now)
            retry = None
            if now >= self._retry_deadline(loop, now):
                retry = retries_of(self.engine.state, loop.pair.name, self._wall()).due
            if batch or retry:
                self._pass(loop, batch=batch, retry=retry)
        self._publish()

    def _pass(self, loop: _PairLoop, *, full: bool = False, batch: Batch | None = None,
              retry: set[str] | None = None) -> None:
        started, pair = self.clock(), loop.pair
        dirs: list[str] = []
        trees: list[str] | None = None  # None: the whole pair
        if not full:
            def mirrored(path: str) -> bool:
                rec = self.engine.state.folder(pair.name, path)
                return rec is not None and rec.state == "active"

            dirs, trees = scope_of(pair.local, batch or Batch(), mirrored, retry or set())
            log.debug("pass", pair=pair.name, dirs=dirs, trees=trees)
        try:
            result = self.engine.sync_pair(pair, dirs=dirs, trees=trees, one_shot=False)
        except ConfigError as exc:  # e.g. an unreadable .syncdignore: this pair waits
            log.error("pair not synced", pair=pair.name, error=str(exc))
            result = PassResult(pair.name, error=str(exc))
        self._after_pass(loop, result, full=full, retried=bool(retry), started=started)

    def _after_pass(self, loop: _PairLoop, result: PassResult, *, full: bool, retried: bool,
                    started: float) -> None:
        if isinstance(result.fatal, AuthRefused):
            raise result.fatal
        now = self.clock()
        if full:
            loop.full_seconds = now - started
        fallback = self.watcher is not None and loop.pair.name in self.watcher.fallback_pairs()
        delay = self._fallback_interval(loop) if fallback else math.inf
        if self.stop.is_set():
            pass  # an interrupted pass proves nothing either way
        elif result.error:
            loop.failures += 1
            backoff = min(PASS_BACKOFF[1], PASS_BACKOFF[0] * 2 ** (loop.failures - 1))
            delay = backoff if delay == math.inf else max(delay, backoff)
            log.warning("pass unfinished", pair=loop.pair.name, error=result.error,
                        retry_in=backoff)
        else:
            loop.failures = 0
            self.metrics.pass_succeeded()  # finished; failed files have their own gauge
        loop.last_error = result.error
        if full or result.error:
            loop.next_full = now + delay
        self._schedule_retry(loop, now, retried)
        self.reporter.beat()

    def _schedule_retry(self, loop: _PairLoop, now: float, retried: bool) -> None:
        """Note the earliest ``next_try`` of the pair's failed and pending files."""
        waiting = retries_of(self.engine.state, loop.pair.name, self._wall())
        loop.retry_wall, loop.waiting = waiting.earliest, (waiting.pending, waiting.failed)
        if retried:  # a retry pass that left a file due (unplannable, say): back off
            stuck = loop.retry_wall is not None and loop.retry_wall <= self._wall()
            loop.retry_gap = min(RETRY_GAP[1], loop.retry_gap * 2) if stuck else RETRY_GAP[0]
            loop.retry_not_before = now + loop.retry_gap

    def _publish(self) -> None:
        self.reporter.publish(self.engine.state, len(self.loops), *self._summary())

    def _status_text(self) -> str:
        return self.reporter.status_text(len(self.loops), *self._summary()[:2])

    def _summary(self) -> tuple[int, list[str], int, int]:
        """Paths queued in the debouncers, the pairs' last errors, files pending, failed."""
        loops = self.loops.values()
        return (sum(lp.debouncer.pending() for lp in loops),
                [lp.last_error for lp in loops if lp.last_error],
                sum(lp.waiting[0] for lp in loops), sum(lp.waiting[1] for lp in loops))


def run_daemon(config: Config, *, config_loader: Callable[[], Config] | None = None,
               **daemon_options: Any) -> int:
    """Entry point of ``syncd run``: lock, state, remote, engine, then the loop."""
    preload_logging()
    try:
        metrics = metrics_for(config.sync.metrics_addr)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"metrics_addr {config.sync.metrics_addr!r}: {exc}") from exc
    daemons: list[Daemon] = []

    def on_retry(endpoint: str, exc: BaseException) -> None:
        if daemons:
            daemons[0].reporter.on_retry(endpoint, exc)

    try:
        with daemon_engine(config, on_retry) as engine:
            daemons.append(Daemon(config, engine, metrics=metrics, config_loader=config_loader,
                                  **daemon_options))
            return daemons[0].run()
    finally:
        metrics.close()

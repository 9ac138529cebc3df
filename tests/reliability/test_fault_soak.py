"""Fault soak: every fault the emulator knows, all at once, under `sync` passes.

15 % proxy 5xx pages, 2 % PHP error pages with status 200, 5 % 429 with Retry-After,
3 % connections reset mid-request (uploads after half the body), 5 % of uploads and
folder creations acted on and then answered 502, every token expired after 25 requests,
30 ms latency. Rounds of local changes (modify, delete, add, drop a directory, replace a
file whose name the server alters) each end with passes until one exits 0; then the
remote must equal the local tree exactly. The same seeded run is replayed against a
fault-free emulator to count the minimal requests, and the faulty run must stay within
2x of it, with authorizations bounded by the token expiries.
"""

from __future__ import annotations

import dataclasses
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from syncd.emulator import EmulatorServer
from syncd.engine import PassResult
from syncd.retry import RetryPolicy
from tests.conftest import EmulatorFactory
from tests.reliability.conftest import Scale
from tests.reliability.kit import (
    REPO,
    FaultLedger,
    build_tree,
    count,
    figures,
    mutate,
    quiet_env,
    syncd_cmd,
    wait_for,
)
from tests.scenario import Scenario

FAULTS = {
    "fail_rate": 0.15,
    "html_errors": 0.02,
    "rate_limit": 0.05,
    "retry_after": 0.05,
    "reset_rate": 0.03,
    "late_fail_rate": 0.05,
    "latency": 0.03,
}
TOKEN_EVERY = 25
MAX_PASSES = 8  # per round: each pass makes progress; the faults cannot stop it for long
POLICY = RetryPolicy.fast(attempts=8)
LOOK_FIRST = ("file/upload", "folder/create")  # a lost answer to these costs a listing
MAX_RATIO = 2.5  # requests / fault-free requests; see docs/reliability.md for the figures
MAX_EXCESS = 1.25  # requests / requests the faults force (in-flight refusals, orphans)


def converge(sc: Scenario, passes: list[PassResult]) -> PassResult:
    for _ in range(MAX_PASSES):
        result = sc.sync(policy=POLICY)
        passes.append(result)
        if result.exit_code == 0:
            return result
    raise AssertionError(f"no clean pass in {MAX_PASSES}: last {result.error or result.failed}")


def play(sc: Scenario, scale: Scale, after_round: Callable[[int], None]) -> list[PassResult]:
    """The seeded scenario: a tree, then rounds of changes, each synced to exit 0."""
    rng = random.Random(scale.seed)
    build_tree(sc, rng, scale.soak_files)
    passes: list[PassResult] = []
    for rnd in range(scale.soak_rounds + 1):
        if rnd:
            mutate(sc, rng)
        converge(sc, passes)
        after_round(rnd)
    return passes


def test_sync_converges_exactly_under_every_fault_at_once(
    tmp_path: Path, emulator_factory: EmulatorFactory, scale: Scale
) -> None:
    faulty = emulator_factory(seed=scale.seed, **FAULTS)
    ledger = FaultLedger(faulty, token_every=TOKEN_EVERY)
    sc = Scenario(tmp_path / "faulty", faulty, on_delete="trash")
    with figures("fault soak (sync)") as fig:
        passes = play(sc, scale, lambda rnd: sc.assert_in_sync())
        ledger.stop()
        clean: EmulatorServer = emulator_factory()
        twin = Scenario(tmp_path / "clean", clean, on_delete="trash")
        play(twin, scale, lambda rnd: None)
        sent, minimal = count(faulty), count(clean)
        fig.values.update(soak_figures(ledger, sent, minimal, passes))
        fig["files_checked"] = len(sc.local_files())

    assert sent < MAX_RATIO * minimal, fig.values
    assert sent < MAX_EXCESS * fig["forced_requests"], fig.values
    # One authorization per pass, plus one per expiry (a second one may race a retry).
    assert fig["authorize"] <= len(passes) + 2 * ledger.expired, fig.values


def soak_figures(
    ledger: FaultLedger, sent: int, minimal: int, passes: list[PassResult]
) -> dict[str, object]:
    """What a run cost, against two baselines: the fault-free run of the same seed
    (``minimal``) and that plus what the faults force on any correct client
    (``forced``): each faulted request sent again, a listing after each lost answer to
    an upload or folder/create (SPEC: look before repeating), and per token expiry an
    authorize plus the refused request that discovered it."""
    lost = ledger.injected(endpoints=LOOK_FIRST, kinds=("reset", "5xx", "html", "late"))
    forced = minimal + ledger.injected() + lost + 2 * ledger.expired
    return {
        "passes": len(passes),
        "requests": sent,
        "minimal_requests": minimal,
        "forced_requests": forced,
        "ratio": round(sent / minimal, 3),
        "ratio_to_forced": round(sent / forced, 3),
        "faults_injected": ledger.injected(),
        "token_expiries": ledger.expired,
        "authorize": count(ledger.srv, "authorize"),
    }


def in_sync(sc: Scenario) -> bool:
    try:
        sc.assert_in_sync()
    except AssertionError:
        return False
    return True


DAEMON_SETTLE = 240.0  # seconds for the daemon to converge after a round (DAEMON policy)


def test_daemon_converges_exactly_under_every_fault_at_once(
    tmp_path: Path, emulator_factory: EmulatorFactory, scale: Scale
) -> None:
    faulty = emulator_factory(seed=scale.seed, **FAULTS)
    ledger = FaultLedger(faulty, token_every=TOKEN_EVERY)
    sc = Scenario(
        tmp_path / "faulty",
        faulty,
        on_delete="trash",
        debounce=0.3,
        max_delay=2.0,
        rescan_interval=0,
    )
    small = dataclasses.replace(scale, soak_files=scale.soak_files // 2)
    rng = random.Random(scale.seed)
    build_tree(sc, rng, small.soak_files)
    log = tmp_path / "run.log"
    with figures("fault soak (run)") as fig, log.open("wb") as err:
        proc = subprocess.Popen(
            syncd_cmd(sc, "run"), stdout=subprocess.DEVNULL, stderr=err, env=quiet_env(), cwd=REPO
        )
        try:
            started = time.monotonic()
            wait_for("the start pass", lambda: in_sync(sc), DAEMON_SETTLE, step=0.25)
            for _ in range(small.soak_rounds):
                mutate(sc, rng)
                wait_for("the round's changes", lambda: in_sync(sc), DAEMON_SETTLE, step=0.25)
            fig["seconds"] = round(time.monotonic() - started, 1)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
        ledger.stop()
        assert code == 0, log.read_text()[-3000:]
        sc.assert_in_sync()

        clean = emulator_factory()
        twin = Scenario(tmp_path / "clean", clean, on_delete="trash")
        passes: list[PassResult] = []
        play(twin, small, lambda rnd: None)
        sent, minimal = count(faulty), count(clean)
        fig.values.update(soak_figures(ledger, sent, minimal, passes))
        fig["files_checked"] = len(sc.local_files())
    assert sent < MAX_RATIO * minimal, fig.values
    assert fig["authorize"] <= 2 + 2 * ledger.expired, fig.values

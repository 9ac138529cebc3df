"""Crash torture: kill -9 of `syncd sync` at random and at chosen instants, many times in
a row, with local changes between kills; a clean pass must then end exactly in sync.

"Exactly" (``Scenario.assert_in_sync``): one active remote copy per local file, same
name and MD5, one folder per local directory, nothing else under the pair's folder - so
nothing lost, nothing duplicated and no orphan left un-trashed (``on_delete = "trash"``).

Random kills (``SIGKILL`` after a seeded random delay) land anywhere: while scanning,
hashing, uploading, in SQLite commits. Targeted kills (``crashpoint.py``) land in the
few microseconds the random ones rarely hit: after the server created a folder, stored
an upload, trashed an old copy or restored a name, and before syncd recorded it; and in
the middle of SQLite write transactions.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from syncd.emulator import EmulatorServer
from syncd.state import StateStore
from tests.conftest import EmulatorFactory
from tests.reliability.conftest import Scale
from tests.reliability.kit import (
    build_tree,
    figures,
    kill9,
    mutate,
    quiet_env,
    random_bytes,
    random_path,
    spawn,
    syncd_cmd,
)
from tests.scenario import Scenario

LATENCY = 0.03  # every request takes a while: kills land mid-request, not only between
KILL_WINDOW = (0.5, 3.0)  # seconds after the start (~0.7 s of it is Python starting up)


def clean_pass(sc: Scenario) -> subprocess.CompletedProcess[str]:
    """The pass after the torture: the real CLI, which must end in sync with exit 0."""
    done = subprocess.run(
        syncd_cmd(sc, "sync"),
        capture_output=True,
        text=True,
        env=quiet_env(),
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def assert_settled(sc: Scenario) -> None:
    sc.assert_in_sync()
    with StateStore(sc.state_db) as state:
        assert state.intents("main") == [], "intents left after a clean pass"


def test_random_kill9_during_sync_many_times_in_a_row(
    tmp_path: Path, emulator_factory: EmulatorFactory, scale: Scale
) -> None:
    srv = emulator_factory(seed=scale.seed, latency=LATENCY)
    sc = Scenario(tmp_path, srv, on_delete="trash")
    rng = random.Random(scale.seed)
    build_tree(sc, rng, scale.torture_files)
    log = tmp_path / "torture.log"
    with figures("crash torture (sync)") as fig:
        for _ in range(scale.torture_kills):
            proc = spawn(sc, "sync", stderr=log)
            try:
                proc.wait(rng.uniform(*KILL_WINDOW))
                fig.add("runs_finished_before_the_kill")
            except subprocess.TimeoutExpired:
                kill9(proc)
                fig.add("kills")
            mutate(sc, rng, share=0.06, dir_chance=0.1)
            top_up(sc, rng, scale.torture_files)  # enough work that most runs are killed
        requests_before = len(srv.requests)
        clean_pass(sc)
        fig["final_pass_requests"] = len(srv.requests) - requests_before
        fig["files_checked"] = len(sc.local_files())
        fig["requests"] = len(srv.requests)
        assert_settled(sc)
        fig["duplicates"] = fig["data_lost"] = 0  # assert_settled proved both
    assert fig.values.get("kills", 0) >= scale.torture_kills // 2, fig.values


def top_up(sc: Scenario, rng: random.Random, files: int) -> None:
    for _ in range(files - len(sc.local_files())):
        sc.write(random_path(rng), random_bytes(rng))


POINTS = [
    "after:create_folder",  # folder made, not recorded: must be adopted, not duplicated
    "after:upload",  # stored (maybe as "name (2).ext"), not recorded: an orphan to trash
    "before:upload",  # intent written, nothing sent
    "after:delete_file",  # replace: old copy trashed, name not restored yet; or a trash
    "before:rename_file",  # replace: between the delete of the old copy and the rename
    "after:rename_file",  # name restored, not recorded
    "after:delete_folder",  # folder trashed, not recorded
    "sql",  # inside a SQLite write transaction, before its commit
]


@pytest.mark.parametrize("point", POINTS)
def test_kill9_at_chosen_instants(
    tmp_path: Path, emulator_factory: EmulatorFactory, scale: Scale, point: str
) -> None:
    srv: EmulatorServer = emulator_factory(seed=scale.seed)
    rng = random.Random(f"{scale.seed}-{point}")
    # Each crashing run follows changes of ~8 files, 2 dropped and 4 new directories.
    reach = {"sql": 60, "after:delete_folder": 2}.get(point, 4)  # writes are many
    occurrences = sorted(rng.sample(range(1, reach + 1), min(reach, scale.crashpoints)))
    with figures(f"crash point {point}") as fig:
        for n in occurrences:
            sc = Scenario(
                tmp_path / f"n{n}", srv, remote_path=f"backup-{n}", on_delete="trash", workers=2
            )
            build_tree(sc, rng, 30)
            for round_ in range(2):
                if round_ == 0:
                    assert sc.sync().exit_code == 0
                change_everything(sc, rng, round_)
                proc = spawn(sc, "sync", crash=(point, n), stderr=sc.tmp / "crash.log")
                code = proc.wait(120)
                fig.add("kills" if code == -9 else "not_reached")
            assert sc.sync().exit_code == 0  # in-process: the same engine, no start-up cost
            assert_settled(sc)
            fig.add("files_checked", len(sc.local_files()))
    assert fig.values.get("kills", 0) >= len(occurrences), fig.values


def change_everything(sc: Scenario, rng: random.Random, round_: int) -> None:
    """Changes that exercise every crash point on the next run: replaces (of names the
    server alters too), deletions, a dropped directory, a new one."""
    mutate(sc, rng, share=0.15, dir_chance=0)
    for top in sorted(p for p in sc.local.iterdir() if p.is_dir() and p.name != "empty dir")[:2]:
        shutil.rmtree(top)
    for folder in ("one", "two/three", "it's four"):
        sc.write(f"fresh {round_}/{folder}/it's here.txt", random_bytes(rng))


def test_state_db_deleted_between_runs_is_rebuilt_by_adopt_without_duplicates(
    tmp_path: Path, emulator_factory: EmulatorFactory, scale: Scale
) -> None:
    srv = emulator_factory(seed=scale.seed)
    sc = Scenario(tmp_path, srv, on_delete="trash")
    rng = random.Random(scale.seed)
    build_tree(sc, rng, 60)
    assert sc.sync().exit_code == 0
    for path in sc.state_db.parent.iterdir():  # the DB, its WAL and shared memory
        path.unlink()
    sc.write("docs/changed while the DB was gone.txt", b"new")
    uploads_before = sum(1 for _, e in srv.requests if e == "file/upload")

    adopted = sc.cli("adopt")
    assert adopted.returncode == 0, adopted.stderr
    assert sc.cli("sync").returncode == 0
    uploads = sum(1 for _, e in srv.requests if e == "file/upload") - uploads_before
    assert uploads == 1  # only the new file: everything else was adopted
    assert_settled(sc)


def test_random_kill9_during_run_with_changes_while_it_watches(
    tmp_path: Path, emulator_factory: EmulatorFactory, scale: Scale
) -> None:
    srv = emulator_factory(seed=scale.seed, latency=LATENCY)
    sc = Scenario(tmp_path, srv, on_delete="trash", debounce=0.1, max_delay=1.0, rescan_interval=0)
    rng = random.Random(scale.seed + 1)
    build_tree(sc, rng, scale.torture_files // 2)
    log = tmp_path / "run.log"
    with figures("crash torture (run)") as fig:
        for _ in range(scale.daemon_kills):
            proc = spawn(sc, "run", stderr=log)
            try:
                proc.wait(rng.uniform(*KILL_WINDOW))  # the start pass
            except subprocess.TimeoutExpired:
                mutate(sc, rng, share=0.03, dir_chance=0.2)  # seen by the watcher
                try:
                    proc.wait(rng.uniform(0.05, 1.5))
                except subprocess.TimeoutExpired:
                    kill9(proc)
                    fig.add("kills")
                    continue
            fig.add("exited_by_itself")  # pragma: no cover - a daemon does not exit
        requests_before = len(srv.requests)
        clean_pass(sc)
        fig["final_pass_requests"] = len(srv.requests) - requests_before
        fig["files_checked"] = len(sc.local_files())
        assert_settled(sc)
        fig["duplicates"] = fig["data_lost"] = 0
    assert fig.values.get("kills", 0) == scale.daemon_kills, fig.values

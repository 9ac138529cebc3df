"""The debouncer with a fake clock: plain floats, no sleeping, no threads."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.debounce import Batch, Debouncer, HintKind


@dataclass
class Clock:
    """Drives a Debouncer the way the daemon does: wait for next_deadline(), call due()."""

    deb: Debouncer
    now: float = 0.0
    emitted: list[tuple[float, Batch]] = field(default_factory=list)

    def hint(self, path: str, kind: HintKind = "change") -> None:
        self.deb.add(path, self.now, kind=kind)

    def advance(self, seconds: float) -> None:
        """Let time pass, collecting every batch at the moment it becomes due."""
        target = self.now + seconds
        while (deadline := self.deb.next_deadline()) is not None and deadline <= target:
            self.now = max(self.now, deadline)
            batch = self.deb.due(self.now)
            assert batch, "due(next_deadline()) must not be empty (that would be a busy loop)"
            self.emitted.append((self.now, batch))
        self.now = target

    def drain(self) -> None:
        self.advance(math.inf)


def clock(debounce: float = 2.0, max_delay: float = 60.0, **kw: int) -> Clock:
    return Clock(Debouncer(debounce, max_delay, **kw))


# -- quiet delay and max delay ---------------------------------------------------------


def test_a_path_is_emitted_once_it_has_been_quiet_for_debounce() -> None:
    c = clock(debounce=2.0)
    c.hint("a.txt")
    c.advance(1.0)
    c.hint("a.txt")  # restarts the quiet timer
    c.advance(1.9)
    assert c.emitted == []
    c.advance(0.1)
    assert c.emitted == [(3.0, Batch(paths=("a.txt",)))]
    assert c.deb.pending() == 0


def test_a_path_that_never_goes_quiet_is_emitted_at_max_delay() -> None:
    c = clock(debounce=2.0, max_delay=10.0)
    for _ in range(250):  # written every 0.1 s for 25 s
        c.hint("busy.log")
        c.advance(0.1)
    times = [t for t, _ in c.emitted]
    assert times == pytest.approx([10.0, 20.1])
    c.drain()
    assert len(c.emitted) == 3  # and once more after the writes stop


def test_a_file_written_1000_times_in_2_seconds_yields_at_most_2_emissions() -> None:
    for debounce, max_delay in [(2.0, 60.0), (0.5, 60.0), (0.5, 1.5), (0.1, 1.0)]:
        c = clock(debounce=debounce, max_delay=max_delay)
        for _ in range(1000):
            c.hint("big.bin")
            c.advance(0.002)
        c.drain()
        assert 1 <= len(c.emitted) <= 2, (debounce, max_delay, c.emitted)
        assert all(batch.paths == ("big.bin",) for _, batch in c.emitted)


def test_re_adding_never_pushes_past_first_seen_plus_max_delay() -> None:
    deb = Debouncer(2.0, 5.0)
    deb.add("x", 0.0)
    deb.add("x", 4.5)
    assert deb.next_deadline() == 5.0


# -- next_deadline -----------------------------------------------------------------------


def test_next_deadline_is_the_earliest_time_due_returns_something() -> None:
    deb = Debouncer(2.0, 60.0)
    assert deb.next_deadline() is None
    assert not deb.due(100.0)
    deb.add("b", 1.0)
    deb.add("a", 0.5)
    assert deb.next_deadline() == 2.5
    assert deb.due(2.4999) == Batch()
    assert deb.due(2.5) == Batch(paths=("a",))
    assert deb.next_deadline() == 3.0
    assert deb.due(3.0) == Batch(paths=("b",))
    assert deb.next_deadline() is None


def test_a_late_due_call_takes_everything_that_is_due() -> None:
    deb = Debouncer(1.0, 60.0)
    for i, path in enumerate(["c", "a", "b"]):
        deb.add(path, float(i))
    assert deb.due(50.0) == Batch(paths=("a", "b", "c"))


# -- kinds, ordering, renames --------------------------------------------------------------


def test_deletes_come_last_in_a_batch() -> None:
    deb = Debouncer(1.0, 60.0)
    deb.add("gone.txt", 0.0, kind="delete")
    deb.add("new.txt", 0.0)
    deb.add("newdir", 0.0, kind="dir")
    batch = deb.due(1.0)
    assert batch.ordered() == [("newdir", "dir"), ("new.txt", "change"), ("gone.txt", "delete")]
    assert len(batch) == 3


def test_latest_of_change_and_delete_wins() -> None:
    deb = Debouncer(1.0, 60.0)
    deb.add("saved.txt", 0.0, kind="delete")  # editor's atomic save: unlink, then create
    deb.add("saved.txt", 0.1)
    deb.add("tmp.txt", 0.0)
    deb.add("tmp.txt", 0.1, kind="delete")
    assert deb.due(2.0) == Batch(paths=("saved.txt",), deletes=("tmp.txt",))


def test_a_rename_settles_in_one_batch_even_when_its_ends_arrive_apart() -> None:
    deb = Debouncer(2.0, 60.0)
    deb.add("old.txt", 10.0, kind="delete")
    deb.add("new.txt", 10.001)  # the other end, a moment later
    # The delete alone is not released at 12.0: it waits for its partner.
    assert deb.next_deadline() == pytest.approx(12.001)
    assert not deb.due(12.0)
    assert deb.due(12.001) == Batch(paths=("new.txt",), deletes=("old.txt",))


def test_a_rename_of_a_busy_file_settles_together() -> None:
    c = clock(debounce=2.0, max_delay=60.0)
    for _ in range(30):
        c.hint("a.log")
        c.advance(0.1)
    c.hint("a.log", "delete")  # mv a.log b.log
    c.hint("b.log")
    c.drain()
    assert [b for _, b in c.emitted] == [Batch(paths=("b.log",), deletes=("a.log",))]


def test_a_delete_waits_at_most_one_more_debounce_for_a_busy_destination() -> None:
    c = clock(debounce=2.0, max_delay=60.0)
    c.hint("a", "delete")
    for _ in range(50):  # the destination is written for 5 s after the move
        c.hint("b")
        c.advance(0.1)
    assert [b for _, b in c.emitted] == [Batch(deletes=("a",))]
    assert c.emitted[0][0] <= 2 * 2.0 + 0.1
    c.drain()
    assert [b for _, b in c.emitted][1:] == [Batch(paths=("b",))]


def test_a_moved_directory_arrives_as_two_trees_in_one_batch() -> None:
    deb = Debouncer(1.0, 60.0)
    deb.add("photos/2023", 0.0, kind="dir")
    deb.add("photos/archive-2023", 0.0005, kind="dir")
    assert not deb.due(1.0)
    assert deb.due(1.0005) == Batch(trees=("photos/2023", "photos/archive-2023"))


def test_a_delete_is_never_held_past_its_cap() -> None:
    c = clock(debounce=2.0, max_delay=5.0)
    c.hint("d", "delete")
    for _ in range(100):
        c.hint("other")
        c.advance(0.01)  # "other" is touched within the window all along
    c.advance(10.0)
    first_delete = next(t for t, b in c.emitted if "d" in b.deletes)
    assert first_delete <= 5.0


def test_unknown_kind_and_bad_settings_are_refused() -> None:
    deb = Debouncer(1.0, 1.0)
    with pytest.raises(ValueError, match="kind"):
        deb.add("x", 0.0, kind="moved")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Debouncer(-1.0, 1.0)
    with pytest.raises(ValueError):
        Debouncer(1.0, 1.0, max_paths=0)


# -- trees and escalation ------------------------------------------------------------------


def test_a_dir_hint_covers_later_hints_below_it() -> None:
    deb = Debouncer(2.0, 60.0)
    deb.add("new", 0.0, kind="dir")
    deb.add("new/a.txt", 1.0)
    deb.add("new/sub/b.txt", 1.5, kind="delete")
    deb.add("new", 1.6)
    assert deb.pending() == 1
    assert deb.next_deadline() == 3.6  # hints below re-touch the tree
    assert deb.due(3.6) == Batch(trees=("new",))


def test_a_dir_hint_absorbs_pending_paths_below_it_and_keeps_their_cap() -> None:
    deb = Debouncer(2.0, 10.0)
    deb.add("d/a", 0.0)
    deb.add("d/sub/b", 1.0, kind="delete")
    deb.add("e", 1.0)
    deb.add("d", 9.0, kind="dir")
    assert deb.pending() == 2
    assert deb.next_deadline() == 3.0  # "e"
    assert deb.due(3.0) == Batch(paths=("e",))
    assert deb.next_deadline() == 10.0  # the cap of "d/a", first seen at 0
    assert deb.due(10.0) == Batch(trees=("d",))


def test_too_many_children_escalate_to_their_directory() -> None:
    deb = Debouncer(1.0, 60.0, escalate_children=100)
    deb.add("elsewhere.txt", 0.0)
    for i in range(100):
        deb.add(f"music/album/{i:03}.flac", 0.5)
    assert deb.pending() == 101
    deb.add("music/album/100.flac", 0.6)  # the 101st child
    assert deb.pending() == 2
    deb.add("music/album/101.flac", 0.7)  # covered by the tree now
    assert deb.pending() == 2
    assert deb.due(2.0) == Batch(trees=("music/album",), paths=("elsewhere.txt",))


def test_subdirectories_with_pending_paths_count_as_children() -> None:
    deb = Debouncer(1.0, 60.0, escalate_children=3)
    for i in range(4):
        deb.add(f"top/d{i}/file", 0.0)
    assert deb.due(1.0) == Batch(trees=("top",))


def test_escalation_can_climb_to_the_whole_pair() -> None:
    deb = Debouncer(1.0, 60.0, escalate_children=2)
    for name in ("a", "b", "c"):
        deb.add(name, 0.0)
    assert deb.due(1.0) == Batch(trees=("",))


def test_more_than_max_paths_escalates_to_the_whole_pair() -> None:
    deb = Debouncer(1.0, 60.0, max_paths=50, escalate_children=5)
    paths = [f"x{i}/y{j}/f{k}" for i in range(5) for j in range(5) for k in range(5)]
    for n, path in enumerate(paths[:50]):
        deb.add(path, n * 0.01)
    assert deb.pending() == 50
    deb.add(paths[50], 0.6)
    assert deb.pending() == 1
    deb.add("anything/else", 0.7, kind="delete")
    assert deb.pending() == 1
    assert deb.next_deadline() == pytest.approx(1.7)
    assert deb.due(1.7) == Batch(trees=("",))


def test_escalation_keeps_the_earliest_cap() -> None:
    c = clock(debounce=2.0, max_delay=60.0, escalate_children=3)
    for _ in range(100):  # "d/first" busy from 0 s to 50 s
        c.hint("d/first")
        c.advance(0.5)
    for i in range(40):  # then its siblings pile up and escalate to "d", busy until 70 s
        c.hint(f"d/f{i}")
        c.advance(0.5)
    assert c.emitted[0] == (60.0, Batch(trees=("d",)))


def test_clear_forgets_everything() -> None:
    deb = Debouncer(1.0, 60.0)
    deb.add("a/b", 0.0)
    deb.add("c", 0.0, kind="dir")
    deb.clear()
    assert deb.pending() == 0
    assert deb.next_deadline() is None
    deb.add("a/b", 1.0)
    assert deb.due(2.0) == Batch(paths=("a/b",))


def test_root_hint_and_slashes() -> None:
    deb = Debouncer(1.0, 60.0)
    deb.add("", 0.0, kind="dir")
    deb.add("/a/b/", 0.2)
    assert deb.pending() == 1
    assert deb.due(1.2) == Batch(trees=("",))


# -- properties ------------------------------------------------------------------------------

NAMES = ["", "a", "b", "a/x", "a/y", "a/x/1", "a/x/2", "a/y/1", "b/z", "b/z/q", "c", "c/1"]
KINDS: list[HintKind] = ["change", "change", "change", "delete", "dir"]


def covers(emitted: str, kind: HintKind, path: str) -> bool:
    if kind != "dir":
        return emitted == path
    return emitted == "" or path == emitted or path.startswith(emitted + "/")


@settings(max_examples=300, deadline=None)
@given(
    debounce=st.sampled_from([0.0, 0.5, 2.0]),
    max_delay=st.sampled_from([0.0, 1.0, 3.0, 60.0]),
    max_paths=st.integers(min_value=1, max_value=12),
    escalate_children=st.integers(min_value=1, max_value=4),
    ops=st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.0, 0.001, 0.1, 0.5, 1.0, 2.5]),
            st.sampled_from(NAMES),
            st.sampled_from(KINDS),
            st.booleans(),  # also poll due() at this arbitrary moment
        ),
        max_size=60,
    ),
)
def test_every_hint_is_emitted_in_time_and_never_twice(
    debounce: float,
    max_delay: float,
    max_paths: int,
    escalate_children: int,
    ops: list[tuple[float, str, HintKind, bool]],
) -> None:
    deb = Debouncer(debounce, max_delay, max_paths=max_paths, escalate_children=escalate_children)
    dirty: dict[str, float] = {}  # path -> first hint not yet covered by an emission
    now = 0.0

    def take(at: float) -> None:
        deadline = deb.next_deadline()
        if deadline is not None and deadline > at:
            probe = copy.deepcopy(deb)
            assert not probe.due(at), "due() returned something before next_deadline()"
        batch = deb.due(at)
        if deadline is not None and deadline <= at:
            assert batch, "due(next_deadline()) must not be empty (that would be a busy loop)"
        seen: set[str] = set()
        for emitted, kind in batch.ordered():
            assert emitted not in seen
            seen.add(emitted)
            hit = [p for p in dirty if covers(emitted, kind, p)]
            assert hit, f"{emitted!r} emitted without a pending hint (twice for one quiet period?)"
            for path in hit:
                assert at <= dirty.pop(path) + max_delay + 1e-9, "emitted past its max_delay cap"
        for tree in batch.trees:
            assert not [p for p in seen if p != tree and covers(tree, "dir", p)]

    for dt, path, kind, poll in ops:
        target = now + dt
        while (deadline := deb.next_deadline()) is not None and deadline <= target:
            now = max(now, deadline)
            take(now)
        now = target
        if poll:
            take(now)
        deb.add(path, now, kind=kind)
        dirty.setdefault(path, now)
        assert deb.pending() <= max_paths
    while (deadline := deb.next_deadline()) is not None:
        now = max(now, deadline)
        take(now)
    assert deb.pending() == 0
    assert dirty == {}, f"never emitted: {dirty}"

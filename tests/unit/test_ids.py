"""Ids sort in the order they were made, several in one millisecond included."""

from __future__ import annotations

import pytest

from runtime import ids


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    """Each test starts as a new process would; the ids made afterwards are not in its future."""
    monkeypatch.setattr(ids, "_last", (0, 0))


def test_ids_made_in_the_same_millisecond_still_increase(monkeypatch):
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_800_000_000_000_000_000)

    made = [ids.new_id("evt") for _ in range(10_000)]

    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_keep_increasing_when_the_clock_steps_back(monkeypatch):
    now = [1_800_000_000_000_000_000]
    monkeypatch.setattr(ids.time, "time_ns", lambda: now[0])
    first = ids.new_id("evt")

    now[0] -= 5_000_000_000  # the system clock goes back five seconds
    later = [ids.new_id("evt") for _ in range(100)]

    assert [first, *later] == sorted([first, *later])


def test_ids_of_a_later_millisecond_sort_after_and_keep_their_shape(monkeypatch):
    now = [1_800_000_000_000_000_000]
    monkeypatch.setattr(ids.time, "time_ns", lambda: now[0])
    earlier = ids.new_id("op")
    now[0] += 1_000_000

    later = ids.new_id("op")

    assert earlier < later
    assert later.startswith("op_") and len(later) == len("op_") + 26
    assert set(later[3:]) <= set("0123456789abcdefghjkmnpqrstvwxyz")


def test_a_forked_process_makes_other_ids_than_its_parent_in_the_same_millisecond(monkeypatch):
    import os

    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_800_000_000_000_000_000)
    ids.new_id("op")  # the parent has read random bytes a child could inherit
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next ids, then out
        os.write(writer, " ".join(ids.new_id("op") for _ in range(5)).encode())
        os._exit(0)
    os.close(writer)
    parent_made = {ids.new_id("op") for _ in range(5)}
    with os.fdopen(reader) as pipe:
        child_made = set(pipe.read().split())
    os.waitpid(child, 0)

    assert len(child_made) == 5 and not parent_made & child_made

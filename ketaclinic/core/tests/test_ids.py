"""Time-ordered public ids (core.ids): valid version 7 UUIDs, ordered by millisecond, distinct."""

from __future__ import annotations

import time
import uuid

from ketaclinic.core.ids import uuid7s


def test_ids_are_version_7_with_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    ids = uuid7s(60)
    after = time.time_ns() // 1_000_000
    assert len(ids) == len(set(ids)) == 60
    for value in ids:
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
        assert before <= value.int >> 80 <= after
        assert uuid.UUID(str(value)) == value


def test_later_batches_sort_after_earlier_ones() -> None:
    first = uuid7s(5)
    time.sleep(0.002)
    second = uuid7s(5)
    assert max(first) < min(second)


def test_the_random_part_varies() -> None:
    ids = uuid7s(1000)
    assert len({value.int & ((1 << 62) - 1) for value in ids}) == 1000
    assert len({(value.int >> 64) & 0xFFF for value in ids}) > 500

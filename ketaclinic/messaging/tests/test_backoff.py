from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.messaging.backoff import MAX_ATTEMPTS, MAX_DELAY, retry_delay


def test_retries_double_from_thirty_seconds():
    assert [retry_delay(n) for n in range(1, 4)] == [
        timedelta(seconds=30),
        timedelta(seconds=60),
        timedelta(seconds=120),
    ]


@given(st.integers(min_value=1, max_value=MAX_ATTEMPTS - 2))
def test_delays_grow_and_stay_under_the_cap(attempts):
    first, second = retry_delay(attempts), retry_delay(attempts + 1)
    assert first is not None
    assert second is not None
    assert first <= second <= MAX_DELAY


@given(st.integers(min_value=MAX_ATTEMPTS, max_value=1000))
def test_it_gives_up_after_the_last_attempt(attempts):
    assert retry_delay(attempts) is None


def test_it_is_asked_only_after_an_attempt():
    with pytest.raises(ValueError, match="at least one"):
        retry_delay(0)

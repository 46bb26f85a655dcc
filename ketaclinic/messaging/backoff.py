"""When to try a failed delivery again, and when to give up. Pure module: no Django.

A provider outage usually lasts minutes: retries double from 30 seconds so that five attempts
span about eight minutes, and the sixth failure marks the message failed on the patient's page,
where staff see it and can reach the patient another way.
"""

from __future__ import annotations

from datetime import timedelta

RULE = "messaging-backoff@1"
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(minutes=30)
MAX_ATTEMPTS = 6


def retry_delay(attempts_made: int) -> timedelta | None:
    """How long to wait after `attempts_made` failed attempts; None when it is time to give up."""
    if attempts_made < 1:
        raise ValueError("retry_delay is asked after at least one attempt")
    if attempts_made >= MAX_ATTEMPTS:
        return None
    delay: timedelta = FIRST_DELAY * 2 ** (attempts_made - 1)
    return min(delay, MAX_DELAY)

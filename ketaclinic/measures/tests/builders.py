"""Answer sets for tests: a full PHQ-9 with a chosen item-9 answer, and the like."""

from __future__ import annotations


def phq9(item9: int = 0, rest: int = 1) -> dict[str, int]:
    answers = {str(i): rest for i in range(1, 9)}
    answers["9"] = item9
    return answers


def phq9_total(total: int) -> dict[str, int]:
    """A PHQ-9 with item 9 at 0 and the given total spread over items 1-8."""
    answers = {str(i): 0 for i in range(1, 10)}
    left = total
    for i in range(1, 9):
        answers[str(i)] = min(3, left)
        left -= answers[str(i)]
    assert left == 0
    return answers

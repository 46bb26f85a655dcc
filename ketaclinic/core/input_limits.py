"""Limits every received JSON document must keep, checked once after parsing and before any model,
mapper or database sees it (the JSON API's parser and the FHIR endpoint both call `check_document`).

Each limit turns a failure that used to surface deep inside (RecursionError in a validator,
decimal.InvalidOperation in a quantize, PostgreSQL refusing U+0000) into one clear error that
names the element at fault. The limits are generous for clinical data and documented next to
each constant below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# Bodies: a FHIR Bundle may carry a whole chart; one resource or one JSON API call is far smaller.
MAX_BUNDLE_BYTES = 20 * 1024 * 1024
MAX_RESOURCE_BYTES = 5 * 1024 * 1024
# The deepest legitimate FHIR JSON (a Bundle entry's resource with contained resources, nested
# extensions and components) stays under 20 levels; validators recurse once per level.
MAX_DEPTH = 64
# No clinical text field is longer than a long note; the stored fields are shorter still and say so
# by their own error.
MAX_STRING_CHARS = 100_000
# |value| below 10^15 keeps every number exact in a decimal with 2-6 places and in a float.
MAX_ABS_NUMBER = 10**15
# C0 control characters other than tab, line feed and carriage return have no place in clinical
# text; U+0000 cannot be stored by PostgreSQL at all.
_FORBIDDEN_CONTROLS = frozenset(chr(c) for c in range(32) if chr(c) not in "\t\n\r") | {"\x7f"}


@dataclass(frozen=True)
class InputProblem(Exception):
    """One element of the document breaks a limit: `path` locates it (FHIRPath-like)."""

    path: str
    message: str
    status: int = 422

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def control_character_in(text: str) -> str | None:
    """The first forbidden control character in `text`, or None."""
    if text.isprintable():  # fast path: printable text has no control characters at all
        return None
    return next((ch for ch in text if ch in _FORBIDDEN_CONTROLS), None)


def check_text(text: str, path: str) -> None:
    """One string: no forbidden control character, at most MAX_STRING_CHARS characters."""
    bad = control_character_in(text)
    if bad is not None:
        raise InputProblem(path, f"contains the control character U+{ord(bad):04X}, not allowed.")
    if len(text) > MAX_STRING_CHARS:
        raise InputProblem(
            path, f"is {len(text):,} characters long; at most {MAX_STRING_CHARS:,} are accepted."
        )


def check_document(value: Any, root: str = "") -> None:
    """Walk a parsed JSON document (iteratively: the depth limit must not itself recurse).

    A first walk only asks whether anything breaks a limit; the walk that names the element at
    fault runs only then (building every element's path made a 60-sample vitals batch cost more
    to check than to store, issue 13)."""
    if _within_limits(value):
        return
    _locate(value, root)


def _within_limits(value: Any) -> bool:
    """True when no element of the document breaks a limit (the same rules as `_locate`)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        kind = type(item)
        if kind is str:
            if not item.isprintable() or len(item) > MAX_STRING_CHARS:
                return False
        elif kind is int or kind is float:
            if not -MAX_ABS_NUMBER < item < MAX_ABS_NUMBER:  # also False for NaN
                return False
        elif kind is dict:
            if depth >= MAX_DEPTH:
                return False
            for key, inner in item.items():
                if type(key) is not str or not key.isprintable() or len(key) > MAX_STRING_CHARS:
                    return False
                push((inner, depth + 1))
        elif kind is list:
            if depth >= MAX_DEPTH:
                return False
            for inner in item:
                push((inner, depth + 1))
        elif item is None or kind is bool:
            continue
        else:
            return False  # anything else (a subclass): the full walk decides
    return True


def _locate(value: Any, root: str) -> None:
    """The first element that breaks a limit, raised as an InputProblem naming its path."""
    stack: list[tuple[Any, str, int]] = [(value, root, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputProblem(path, f"is nested more than {MAX_DEPTH} levels deep.", 400)
        if isinstance(item, str):
            check_text(item, path or "body")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int | float):
            _check_number(item, path or "body")
        elif isinstance(item, dict):
            for key, inner in item.items():
                key_text = str(key)
                check_text(key_text, f"{path}.{key_text}" if path else key_text)
                stack.append((inner, f"{path}.{key_text}" if path else key_text, depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, f"{path}[{i}]", depth + 1) for i, inner in enumerate(item))


def _check_number(number: float, path: str) -> None:
    if isinstance(number, float) and not math.isfinite(number):
        raise InputProblem(path, "must be a finite number.")
    if abs(number) >= MAX_ABS_NUMBER:
        raise InputProblem(
            path, "is out of range: numbers must lie strictly between -10^15 and 10^15."
        )

"""Where the suite's public test material lives: tests/data, inside the repository (see its README)."""

from __future__ import annotations

from pathlib import Path

TEST_DATA = Path(__file__).resolve().parent / "data"

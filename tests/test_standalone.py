"""The repository stands alone: a clone with nothing beside it has the test data, the written-up
sources every citation points to, and no file names a path outside the repository."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = {
    ".git",
    ".venv",
    "var",
    "node_modules",
    "test-results",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    ".hypothesis",
}
SKIPPED_SUFFIXES = {".pyc", ".png", ".jpg", ".pdf", ".sqlite3", ".woff", ".woff2", ".ico"}
# Written in pieces so that this file does not match itself.
OUTSIDE = re.compile(
    "|".join(
        [
            r"\.\./" + "shared",
            "/" + "work/",
            r"(?<![\w/.-])" + "shared/" + r"(?:clinical-reference|access-and-billing|data/|"
            r"PERFORMANCE|ARCHITECTURE|STYLE)",
        ]
    )
)
CITED = re.compile(r"(?<![\w/.-])((?:docs|tests/data)/[\w./-]*[\w/])")


def repository_files() -> Iterator[Path]:
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT)
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in relative.parts):
            continue
        if path.is_file() and path.suffix not in SKIPPED_SUFFIXES:
            yield path


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def test_no_file_names_a_path_outside_the_repository() -> None:
    offenders = []
    for path in repository_files():
        text = _text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not offenders, (
        "These lines name a path outside the repository; cite the write-up in docs/sources/ "
        "or the copy in tests/data/ instead:\n" + "\n".join(offenders)
    )


def test_every_docs_or_test_data_path_cited_in_the_code_exists() -> None:
    missing = []
    for path in repository_files():
        if path.is_relative_to(ROOT / "tests" / "data"):
            continue  # third-party material: its own paths are not ours
        text = _text(path)
        if text is None:
            continue
        for cited in set(CITED.findall(text)):
            if "<" in cited or "*" in cited:
                continue
            if not (ROOT / cited.rstrip(".")).exists():
                missing.append(f"{path.relative_to(ROOT)} cites {cited}")
    assert not missing, "Cited paths that do not exist:\n" + "\n".join(sorted(missing))


def test_the_suites_test_data_is_in_the_repository_and_small() -> None:
    data = ROOT / "tests" / "data"
    assert (data / "README.md").is_file()
    size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    assert size < 25 * 1024 * 1024, f"tests/data is {size / 1024 / 1024:.1f} MB"
    readme = (data / "README.md").read_text(encoding="utf-8")
    for folder in sorted(p.name for p in data.iterdir() if p.is_dir()):
        assert f"`{folder}/" in readme, f"tests/data/README.md does not describe {folder}/"


def test_pdf_checks_need_no_system_package() -> None:
    """PDFs are read with pypdfium2 (a pinned dev dependency), not poppler's command-line tools."""
    assert re.search(r'"pypdfium2==[\d.]+"', (ROOT / "pyproject.toml").read_text())
    callers = [
        str(path.relative_to(ROOT))
        for path in repository_files()
        if path.suffix == ".py"
        and path != Path(__file__).resolve()
        and re.search(r"pdftoppm|pdftotext", _text(path) or "")
    ]
    assert not callers, f"still calling poppler: {callers}"

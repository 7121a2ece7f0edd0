"""docs/facts.md is where the code's Tencent facts are cited from: every citation must name an anchor there, and
nothing may cite the old fact sheet (a file outside the repository) any more."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACTS = ROOT / "docs" / "facts.md"
SCANNED = ("shared", "emulator", "functions", "scripts", "tests", "docs", "deploy", "examples")
TOP_FILES = ("README.md", "Makefile", "serverless.yml", "pyproject.toml")
SUFFIXES = {".py", ".md", ".yml", ".yaml", ".json", ".toml", ".txt", ".ini", ".cfg"}
CITATION = re.compile(r"facts\.md#([A-Za-z0-9_-]+)")
ANCHOR = re.compile(r'<a id="([A-Za-z0-9_-]+)"></a>')
OLD_SHEET = re.compile(r"fact sheet|reference, section", re.IGNORECASE)
#: files being deleted or rewritten in a parallel change (the TDMQ link's removal); drop once that has landed
NOT_YET: set[str] = set()


def _files() -> list[Path]:
    found = [ROOT / name for name in TOP_FILES if (ROOT / name).is_file()]
    for folder in SCANNED:
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in SUFFIXES and not any(p.startswith(".") for p in path.parts):
                found.append(path)
    return found


def _anchors() -> set[str]:
    return set(ANCHOR.findall(FACTS.read_text()))


def test_facts_has_anchors_and_each_is_unique() -> None:
    anchors = ANCHOR.findall(FACTS.read_text())
    assert len(anchors) > 20
    assert len(anchors) == len(set(anchors)), sorted(a for a in anchors if anchors.count(a) > 1)


def test_every_citation_names_an_anchor_that_exists() -> None:
    anchors = _anchors()
    cited: list[tuple[str, str]] = []
    for path in _files():
        for anchor in CITATION.findall(path.read_text(errors="replace")):
            cited.append((str(path.relative_to(ROOT)), anchor))
    assert len(cited) >= 20  # the code does cite it, so the check below is not vacuous
    missing = [(where, anchor) for where, anchor in cited if anchor not in anchors]
    assert missing == [], f"citations of docs/facts.md anchors that do not exist: {missing}"


def test_nothing_cites_the_old_fact_sheet() -> None:
    this = Path(__file__).resolve()
    stale = []
    for path in _files():
        where = str(path.relative_to(ROOT))
        if path.resolve() in (this, FACTS) or where in NOT_YET:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OLD_SHEET.search(line):
                stale.append(f"{where}:{number}: {line.strip()}")
    assert stale == [], "cite docs/facts.md#<anchor> instead:\n" + "\n".join(stale)

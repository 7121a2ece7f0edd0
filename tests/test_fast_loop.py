"""`make check` runs the tests not marked slow; the folders in conftest.SLOW_FOLDERS must stay out of it whole."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import SLOW_FOLDERS, TESTS


@pytest.mark.slow  # collecting the fuzz and chaos modules imports schemathesis and hypothesis (~2 s)
def test_no_test_in_the_slow_folders_escapes_the_slow_marker() -> None:
    assert all((TESTS / name).is_dir() for name in SLOW_FOLDERS), "a slow folder was renamed: update SLOW_FOLDERS"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow",
        *(str(TESTS / name) for name in SLOW_FOLDERS),
    ]
    fast = subprocess.run(command, cwd=TESTS.parent, capture_output=True, text=True, timeout=120)
    escaped = [line for line in fast.stdout.splitlines() if "::" in line]
    assert escaped == [], f"tests in {SLOW_FOLDERS} not marked slow: {escaped}"
    deselected = re.search(r"(\d+) deselected", fast.stdout)
    assert fast.returncode == 5 and deselected and int(deselected[1]) > 0, fast.stdout + fast.stderr  # not vacuous

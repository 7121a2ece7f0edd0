"""Fixtures of the queue and completion-link tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.queues.canned import serve_canned


@pytest.fixture
def canned() -> Iterator[Any]:
    """A local HTTP server answering the real SDK with scripted answers (tests.queues.canned)."""
    yield from serve_canned()

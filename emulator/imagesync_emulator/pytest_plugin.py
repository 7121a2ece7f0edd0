"""pytest fixtures: ``pytest_plugins = ["imagesync_emulator.pytest_plugin"]``.

``emulator``: a fresh emulator per test (default world, rate limits on, time_scale 600, seed 0).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .emulator import Emulator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(world=None, time_scale=600.0, seed=0, rate_limits=True) as emu:
        yield emu

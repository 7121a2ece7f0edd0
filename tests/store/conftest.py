"""Fixtures of the store suite: `store_url` over SQLite, MariaDB/MySQL and PostgreSQL, `store` on a clean schema.

Each server backend gets one uniquely named database per test session (created here, dropped at the end),
migrated once; every test then starts from empty tables. An unreachable server skips its tests with the reason,
except under CI (env CI set), where it fails them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import SERVER_URLS, create_database, drop_database, reachable, wipe

from imagesync.adapters.sql import SqlStateStore, dispose_engines, make_engine, upgrade

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
SERVER_BACKENDS = BACKENDS[1:]


_reachability: dict[str, str | None] = {}


def require_server(kind: str) -> str:
    """The base URL of the `kind` server, or skip (fail under CI) when it does not answer."""
    url = SERVER_URLS[kind]
    if kind not in _reachability:  # probe once per session: an absent server costs one connect timeout
        _reachability[kind] = reachable(url)
    reason = _reachability[kind]
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{kind} server required under CI: {reason}")
        pytest.skip(reason)
    return url


class Databases:
    """Creates throwaway databases on demand and drops them all at the end of the session."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.created: list[tuple[str, str]] = []
        self.count = 0

    def new(self, kind: str) -> str:
        if kind == "sqlite":
            self.count += 1
            return f"sqlite:///{self.tmp / f'state{self.count}.db'}"
        base = require_server(kind)
        url = create_database(base)
        self.created.append((base, url))
        return url

    def drop_all(self) -> None:
        dispose_engines()
        for base, url in self.created:
            try:
                drop_database(base, url)
            except Exception as exc:  # leave a stray test database rather than fail the session
                print(f"could not drop {url}: {exc}")


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("state"))
    yield dbs
    dbs.drop_all()


_migrated: dict[str, str] = {}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=SERVER_BACKENDS)
def server_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, databases: Databases) -> str:
    """The session's migrated database of this backend, emptied for this test."""
    if backend not in _migrated:
        url = databases.new(backend)
        upgrade(url)
        _migrated[backend] = url
    url = _migrated[backend]
    wipe(make_engine(url))
    return url


@pytest.fixture
def store(store_url: str) -> SqlStateStore:
    return SqlStateStore(make_engine(store_url))


@pytest.fixture
def server_store_url(server_backend: str, databases: Databases) -> str:
    """Like store_url, on the server backends only (fault tests)."""
    if server_backend not in _migrated:
        url = databases.new(server_backend)
        upgrade(url)
        _migrated[server_backend] = url
    url = _migrated[server_backend]
    wipe(make_engine(url))
    return url


@pytest.fixture
def empty_url(backend: str, databases: Databases) -> str:
    """A brand-new empty database of this backend (migration tests)."""
    return databases.new(backend)

"""The composition root builds the cloud client, the image service and the copy starter when first used: an idle
sweep (nothing claimed) builds none of them (docs/benchmarks.md, "Cold import and the deploy package")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imagesync.settings import Settings
from imagesync.wiring import Services


class FakeCloud:
    def __init__(self) -> None:
        self.refreshed = 0

    def refresh_credentials(self) -> None:
        self.refreshed += 1


class Factory:
    def __init__(self) -> None:
        self.made: list[FakeCloud] = []

    def __call__(self) -> Any:
        self.made.append(FakeCloud())
        return self.made[-1]


def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'state.db'}", queue_path=str(tmp_path / "queue.db"))


def test_the_cloud_client_is_built_once_on_first_use(tmp_path: Path) -> None:
    make = Factory()
    svc = Services(settings(tmp_path), make_cloud=make)
    svc.begin_invocation()  # nothing built yet: no credentials to refresh
    assert make.made == []
    cloud = svc.cloud
    assert svc.cloud is cloud and make.made == [cloud]
    svc.begin_invocation()
    assert make.made[0].refreshed == 1


def test_a_cloud_given_or_assigned_is_used_as_is(tmp_path: Path) -> None:
    make, given = Factory(), FakeCloud()
    svc = Services(settings(tmp_path), make_cloud=make)
    svc.cloud = given  # type: ignore[assignment]
    assert svc.cloud is given and make.made == []
    assert Services(settings(tmp_path)).cloud is None  # no cloud at all (tests, the local demo)


def test_an_idle_sweep_builds_no_cloud_client_image_service_or_starter(tmp_path: Path) -> None:
    make = Factory()
    svc = Services(settings(tmp_path), make_cloud=make)
    report = svc.sweep()().as_dict()
    assert report["claimed"] == 0 and report["schedule"] is None  # IMAGESYNC_SCHEDULER=none: nothing to disarm
    assert make.made == [] and svc._images is None


def test_look_ahead_learn_asks_recent_copies_always_and_never_do_not(tmp_path: Path) -> None:
    learn = Services(settings(tmp_path))  # SQLite: the schema is made on start
    bets = learn.bets()
    assert bets is not None and bets("ap-shanghai") is False  # no copy has ended yet: nothing says they pay
    assert "first_look" in learn.extras  # asked the recent copies
    always = Services(settings(tmp_path).model_copy(update={"look_ahead": "always"}))
    assert always.bets() is None  # the lenient budget, a copy first looked at the floor included
    never = Services(settings(tmp_path).model_copy(update={"look_ahead": "never"})).bets()
    assert never is not None and never("ap-shanghai") is False

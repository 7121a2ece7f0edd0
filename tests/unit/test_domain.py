"""Domain rules and transitions: pure, no sockets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from imagesync.domain import errors, regions
from imagesync.domain.models import CopyRequest, Replica, SourceImage
from imagesync.domain.states import TERMINAL, TRANSITIONS, IllegalTransition, ReplicaState, check_transition
from imagesync.domain.validation import Limits, check_image, check_shape

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
S = ReplicaState


@pytest.mark.parametrize(
    ("source", "destination", "error"),
    [
        ("ap-guangzhou", "ap-shanghai", None),
        ("ap-singapore", "ap-tokyo", None),
        ("ap-shanghai-fsi", "ap-beijing-fsi", None),
        ("ap-guangzhou", "ap-guangzhou", errors.SameRegion),
        ("ap-guangzhou", "ap-singapore", errors.CrossBorderNotAllowed),
        ("ap-hongkong", "ap-beijing", errors.CrossBorderNotAllowed),
        ("ap-guangzhou", "ap-shanghai-fsi", errors.FinanceZoneIsolation),
        ("ap-shenzhen-fsi", "ap-singapore", errors.FinanceZoneIsolation),
        ("ap-taipei", "ap-tokyo", errors.RegionCannotCopy),
        ("ap-guangzhou", "ap-mumbai", errors.UnknownRegion),
        ("ap-guangzhou", "xx-nowhere", errors.UnknownRegion),
    ],
)
def test_region_policy(source: str, destination: str, error: type[Exception] | None) -> None:
    if error is None:
        regions.check_copy(source, destination)
    else:
        with pytest.raises(error):
            regions.check_copy(source, destination)


def test_cross_border_allowed_when_approved() -> None:
    regions.check_copy("ap-guangzhou", "ap-singapore", cross_border_allowed=True)
    with pytest.raises(errors.FinanceZoneIsolation):
        regions.check_copy("ap-guangzhou", "ap-beijing-fsi", cross_border_allowed=True)


def test_region_not_available_for_the_account() -> None:
    with pytest.raises(errors.RegionUnavailable) as info:
        regions.check_copy("ap-guangzhou", "ap-chengdu", available=frozenset({"ap-guangzhou", "ap-shanghai"}))
    assert info.value.code == "Region.Unavailable"


def test_transition_table() -> None:
    for terminal in TERMINAL:
        assert TRANSITIONS[terminal] == frozenset()
        for target in S:
            with pytest.raises(IllegalTransition):
                check_transition(terminal, target)
    check_transition(S.PENDING, S.COPYING)
    check_transition(S.WAITING_SOURCE, S.COPYING)
    check_transition(S.COPYING, S.SUCCEEDED)
    with pytest.raises(IllegalTransition):
        check_transition(S.COPYING, S.PENDING)
    with pytest.raises(IllegalTransition):
        check_transition(S.PENDING, S.SUCCEEDED)


def test_replica_moved_sets_ended_at_on_terminal_states() -> None:
    replica = Replica(
        replication_id="rep-x",
        source_region="ap-guangzhou",
        source_image_id="img-5ddkx3gh",
        destination_region="ap-shanghai",
        image_name="web",
        deadline_at=NOW + timedelta(hours=2),
    )
    copying = replica.moved(S.COPYING, NOW, destination_image_id="img-aaaaaaaa")
    assert copying.ended_at is None and copying.destination_image_id == "img-aaaaaaaa"
    done = copying.moved(S.SUCCEEDED, NOW + timedelta(minutes=20))
    assert done.ended_at == NOW + timedelta(minutes=20)
    with pytest.raises(IllegalTransition):
        done.moved(S.COPYING, NOW)


def _image(**overrides: object) -> SourceImage:
    fields: dict[str, object] = dict(
        image_id="img-5ddkx3gh",
        region="ap-guangzhou",
        name="web",
        image_type="PRIVATE_IMAGE",
        state="NORMAL",
        size_gb=20,
    )
    fields.update(overrides)
    return SourceImage(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("image", "code"),
    [
        (None, "Image.NotFound"),
        (_image(image_type="PUBLIC_IMAGE"), "Image.NotCustom"),
        (_image(image_type="SHARED_IMAGE"), "Image.SharedOnlySameRegion"),
        (_image(size_gb=51), "Image.TooLarge"),
        (_image(state="CREATEFAILED"), "Image.NotNormal"),
    ],
)
def test_image_rules(image: SourceImage | None, code: str) -> None:
    with pytest.raises(errors.ImageSyncError) as info:
        check_image("img-5ddkx3gh", image, "ap-guangzhou", Limits())
    assert info.value.code == code


def test_image_ready_or_waiting() -> None:
    assert check_image("img-5ddkx3gh", _image(), "ap-guangzhou", Limits()) is True
    assert check_image("img-5ddkx3gh", _image(state="CREATING"), "ap-guangzhou", Limits()) is False
    assert check_image("img-5ddkx3gh", _image(state="SYNCING"), "ap-guangzhou", Limits()) is False
    assert check_image("img-5ddkx3gh", _image(size_gb=500), "ap-guangzhou", Limits(size_cap_gb=0)) is True


def _request(**overrides: object) -> CopyRequest:
    fields: dict[str, object] = dict(
        source_region="ap-guangzhou", image_ids=["img-5ddkx3gh"], destination_regions=["ap-shanghai"]
    )
    fields.update(overrides)
    return CopyRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (_request(name="x" * 61), "Name.TooLong"),
        (_request(destination_regions=["ap-shanghai", "ap-shanghai"]), "Region.Duplicate"),
        (_request(image_ids=[f"img-{i:08d}" for i in range(11)]), "Request.TooManyItems"),
        (_request(destination_regions=["ap-guangzhou"]), "Region.SameAsSource"),
        (_request(destination_regions=["ap-tokyo"]), "Region.CrossBorderNotAllowed"),
    ],
)
def test_request_shape_rules(request_: CopyRequest, code: str) -> None:
    with pytest.raises(errors.ImageSyncError) as info:
        check_shape(request_, Limits(), None)
    assert info.value.code == code


def test_request_shape_ok() -> None:
    check_shape(_request(name="x" * 60, destination_regions=["ap-shanghai", "ap-beijing"]), Limits(), None)


def test_malformed_ids_rejected_by_the_model() -> None:
    with pytest.raises(ValueError):
        _request(image_ids=["not-an-image"])

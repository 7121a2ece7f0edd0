"""Everything the product docs say about a copy, checked before any SyncImages call (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass

from . import errors, regions
from .models import CopyRequest, SourceImage

MAX_NAME = 60  # SyncImages' ImageName limit
READY = "NORMAL"
#: A source in one of these states will become copyable by itself: its replicas wait instead of failing.
WAITABLE = frozenset({"CREATING", "SYNCING", "IMPORTING", "USING"})


@dataclass(frozen=True)
class Limits:
    size_cap_gb: int = 50  # 0 = off
    cross_border_allowed: bool = False
    max_images: int = 10
    max_regions: int = 16


def check_shape(request: CopyRequest, limits: Limits, available: frozenset[str] | None) -> None:
    """Counts, distinct regions, name length and the region policy: needs no image facts."""
    if len(request.image_ids) > limits.max_images:
        raise errors.TooManyItems(
            f"{len(request.image_ids)} images in one request; at most {limits.max_images}",
            limit=limits.max_images,
        )
    if len(request.destination_regions) > limits.max_regions:
        raise errors.TooManyItems(
            f"{len(request.destination_regions)} regions in one request; at most {limits.max_regions}",
            limit=limits.max_regions,
        )
    if len(set(request.image_ids)) != len(request.image_ids):
        raise errors.InvalidRequest("the same image is named twice", image_ids=request.image_ids)
    if len(set(request.destination_regions)) != len(request.destination_regions):
        raise errors.DuplicateRegion("the same destination region is named twice", regions=request.destination_regions)
    if request.name is not None and len(request.name) > MAX_NAME:
        raise errors.NameTooLong(f"copy name has {len(request.name)} characters; at most {MAX_NAME}")
    for destination in request.destination_regions:
        regions.check_copy(
            request.source_region,
            destination,
            available=available,
            cross_border_allowed=limits.cross_border_allowed,
        )


def check_image(image_id: str, image: SourceImage | None, region: str, limits: Limits) -> bool:
    """Raise why `image` cannot be copied, or return whether it is ready now (False: wait for it)."""
    if image is None:
        raise errors.ImageNotFound(f"image {image_id} not found in {region}", image_id=image_id, region=region)
    if image.image_type == "PUBLIC_IMAGE":
        raise errors.NotCustomImage(
            f"{image_id} is a public image; only custom images can be copied", image_id=image_id
        )
    if image.image_type == "SHARED_IMAGE":
        raise errors.SharedImageRegion(
            f"{image_id} is shared with this account; a shared image can only be copied into its own region",
            image_id=image_id,
        )
    if image.image_type and image.image_type != "PRIVATE_IMAGE":
        raise errors.NotCustomImage(f"{image_id} is a {image.image_type}, not a custom image", image_id=image_id)
    if limits.size_cap_gb and image.size_gb > limits.size_cap_gb:
        raise errors.ImageTooLarge(
            f"{image_id} is {image.size_gb} GB; copies are limited to {limits.size_cap_gb} GB",
            image_id=image_id,
            size_gb=image.size_gb,
            cap_gb=limits.size_cap_gb,
        )
    if image.state == READY:
        return True
    if image.state in WAITABLE:
        return False
    raise errors.ImageNotNormal(
        f"{image_id} is {image.state}; only a NORMAL image can be copied", image_id=image_id, state=image.state
    )


def copy_name(request_name: str | None, image: SourceImage) -> str:
    return request_name or image.name

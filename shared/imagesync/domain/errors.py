"""Typed domain errors, each with a stable machine-readable code.

The codes are part of the public contract (HTTP API bodies, CLI output, stored replica errors): never rename one.
Mapping to HTTP status lives in one place (imagesync.handlers.api.errors), not here.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ImageSyncError(Exception):
    """Base of every error imagesync raises on purpose."""

    code: ClassVar[str] = "ImageSync.Error"
    #: kind groups codes for the HTTP mapping: "invalid" (400), "rule" (422), "not_found" (404),
    #: "conflict" (409), "retryable" (503), "internal" (500)
    kind: ClassVar[str] = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidRequest(ImageSyncError):
    code = "InvalidRequest"
    kind = "invalid"


class ImageNotFound(ImageSyncError):
    code = "Image.NotFound"
    kind = "rule"


class NotCustomImage(ImageSyncError):
    code = "Image.NotCustom"
    kind = "rule"


class SharedImageRegion(ImageSyncError):
    code = "Image.SharedOnlySameRegion"
    kind = "rule"


class ImageNotNormal(ImageSyncError):
    code = "Image.NotNormal"
    kind = "rule"


class ImageTooLarge(ImageSyncError):
    code = "Image.TooLarge"
    kind = "rule"


class UnknownRegion(ImageSyncError):
    code = "Region.Unknown"
    kind = "rule"


class RegionUnavailable(ImageSyncError):
    code = "Region.Unavailable"
    kind = "rule"


class SameRegion(ImageSyncError):
    code = "Region.SameAsSource"
    kind = "rule"


class CrossBorderNotAllowed(ImageSyncError):
    code = "Region.CrossBorderNotAllowed"
    kind = "rule"


class FinanceZoneIsolation(ImageSyncError):
    code = "Region.FinanceZoneIsolation"
    kind = "rule"


class RegionCannotCopy(ImageSyncError):
    code = "Region.CannotCopy"
    kind = "rule"


class NameTooLong(ImageSyncError):
    code = "Name.TooLong"
    kind = "invalid"


class TooManyItems(ImageSyncError):
    code = "Request.TooManyItems"
    kind = "invalid"


class DuplicateRegion(ImageSyncError):
    code = "Region.Duplicate"
    kind = "invalid"


class QuotaExceeded(ImageSyncError):
    code = "Region.QuotaExceeded"
    kind = "rule"


class AlreadyInFlight(ImageSyncError):
    """A copy of the same image into the same region is already in flight: answered with the existing one."""

    code = "Replication.AlreadyInFlight"
    kind = "conflict"

    def __init__(self, message: str, replication_id: str, **details: Any) -> None:
        super().__init__(message, replication_id=replication_id, **details)
        self.replication_id = replication_id


class ReplicationNotFound(ImageSyncError):
    code = "Replication.NotFound"
    kind = "not_found"


class NothingToRetry(ImageSyncError):
    """POST /replications/{id}/retry found no FAILED or TIMED_OUT copy to retry and no retry running."""

    code = "Retry.NothingToRetry"
    kind = "conflict"


class RetrySucceeded(ImageSyncError):
    """A retry named a copy whose latest attempt SUCCEEDED: a finished copy is never touched."""

    code = "Retry.AlreadySucceeded"
    kind = "conflict"


class RetryStillActive(ImageSyncError):
    """A retry named a copy whose first attempt is still in flight (not failed yet: nothing to retry)."""

    code = "Retry.StillActive"
    kind = "conflict"


class RetryNotInReplication(ImageSyncError):
    """A retry named a region or replica id that is not part of the replication."""

    code = "Retry.NotInReplication"
    kind = "invalid"


class NoDestinationLeft(ImageSyncError):
    """A destination keyword (all, all-mainland, all-overseas) resolved to no region the source can copy to."""

    code = "Region.NoneLeft"
    kind = "rule"


class IdempotencyConflict(ImageSyncError):
    """The same idempotency key was reused with another payload."""

    code = "Idempotency.KeyReused"
    kind = "conflict"


class IdempotencyInProgress(ImageSyncError):
    code = "Idempotency.InProgress"
    kind = "retryable"


#: Tencent's codes for "the image is held by another operation": the source is busy with another copy.
BUSY_CODES = ("FailedOperation.InvalidImageState", "InvalidParameterValue.InvalidImageState")


class CloudError(ImageSyncError):
    """A Tencent Cloud API call failed; `cloud_code` is Tencent's own error code."""

    code = "Cloud.Error"
    kind = "internal"

    def __init__(self, cloud_code: str, message: str, *, request_id: str | None = None, retryable: bool = False):
        super().__init__(message, cloud_code=cloud_code, request_id=request_id)
        self.cloud_code = cloud_code
        self.request_id = request_id
        self.retryable = retryable

    @property
    def busy(self) -> bool:
        return self.cloud_code.startswith(BUSY_CODES)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.cloud_code, "message": self.message, "request_id": self.request_id}


class CredentialsNotFound(ImageSyncError):
    """No Tencent Cloud keys anywhere imagesync looks (`details["looked"]` lists where, in order).

    Not a CloudError on purpose: nothing was called, so no copy may be marked failed because of it.
    """

    code = "Credentials.NotFound"
    kind = "internal"


class CredentialsInvalid(ImageSyncError):
    """A place that holds Tencent Cloud keys (a profile file, the instance role) holds them in a form not understood."""

    code = "Credentials.Invalid"
    kind = "internal"


class SchemaOutOfDate(ImageSyncError):
    code = "State.SchemaOutOfDate"
    kind = "internal"


# -- other accounts (issue 14 item 5) ------------------------------------------------------------------------------


class DuplicateAccount(ImageSyncError):
    """The same account is named twice among a request's destinations."""

    code = "Account.Duplicate"
    kind = "invalid"


class OwnAccount(ImageSyncError):
    """An account destination names the account imagesync runs as: name its regions as plain destinations."""

    code = "Account.IsOwn"
    kind = "invalid"

"""Named constrained types reused at every boundary."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

ImageId = Annotated[str, StringConstraints(pattern=r"^img-[0-9a-z]{8}$")]
Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}-[a-z]+(-[a-z0-9]+)*$", max_length=40)]
#: SyncImages' ImageName: at most 60 characters (checked with its own error code in validation)
ImageName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: a destination: a region, or a keyword for every region of a kind (domain.destinations): all, all-mainland,
#: all-overseas
Destination = Annotated[
    str,
    StringConstraints(pattern=r"^(all|all-mainland|all-overseas|[a-z]{2}-[a-z]+(-[a-z0-9]+)*)$", max_length=40),
]

"""STS 2018-08-13: AssumeRole, temporary keys that act as the role's account.

A world declares roles per account, each with the accounts trusted to assume it (world file ``accounts[].roles``,
or admin.add_role). The keys AssumeRole answers are the emulator's temporary keys (they need their X-TC-Token) for
the ROLE's account: every call signed with them acts as that account, whatever account asked for them.

Parameters and answer as in the SDK model (sts 3.0.1459 ``AssumeRoleRequest`` / ``AssumeRoleResponse``). The error
codes are the sts ``errorcodes.py`` ones; which code answers which refusal is unconfirmed (the API page lists the
codes without saying which check raises which) and is listed in docs/emulator.md ("Roles and sts AssumeRole").
"""

from __future__ import annotations

import re

from ..errors import ApiError
from ..params import Params
from ..world import iso8601
from . import CallContext, Service

SERVICE = Service("sts", "2018-08-13")

ROLE_ARN_RE = re.compile(r"^qcs::cam::uin/(?P<uin>\d+):(?:roleName/(?P<name>[\w+=,.@-]{1,128})|role/(?P<id>\d+))$")
SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,128}$")
DEFAULT_DURATION_S = 7200
MAX_DURATION_S = 43200


@SERVICE.action(
    "AssumeRole",
    {
        "RoleArn",
        "RoleSessionName",
        "DurationSeconds",
        "Policy",
        "ExternalId",
        "Tags",
        "SourceIdentity",
        "SerialNumber",
        "TokenCode",
    },
    rate=600,
)
def assume_role(ctx: CallContext, p: Params) -> dict:
    arn = p.text("RoleArn", required=True) or ""
    session = p.text("RoleSessionName", required=True) or ""
    duration = p.integer("DurationSeconds", default=DEFAULT_DURATION_S)
    for unused in ("Policy", "ExternalId", "SourceIdentity", "SerialNumber", "TokenCode"):
        p.text(unused)
    p.obj_list("Tags", fields={"Key": str, "Value": str})
    m = ROLE_ARN_RE.match(arn)
    if m is None:
        raise ApiError(
            "InvalidParameter.ResouceError", f"`{arn}` is not a role ARN like qcs::cam::uin/<uin>:roleName/<name>."
        )
    if not SESSION_NAME_RE.match(session):
        raise ApiError(
            "InvalidParameter.ParamError", "RoleSessionName is 2-128 letters, digits and the characters =,.@_-."
        )
    if duration is None or not 0 < duration <= MAX_DURATION_S:
        raise ApiError("InvalidParameter.OverTimeError", f"DurationSeconds is 1-{MAX_DURATION_S} seconds.")
    world = ctx.world
    owner = world.accounts.get(m["uin"])
    if owner is None:
        raise ApiError("InvalidParameter.AccountNotAvaliable", f"The account `{m['uin']}` does not exist.")
    role = next(
        (
            r
            for r in world.roles.values()
            if r.uin == owner.uin and (r.name == m["name"] if m["name"] else r.role_id == m["id"])
        ),
        None,
    )
    if role is None:
        raise ApiError("ResourceNotFound.RoleNotFound", f"The role `{arn}` does not exist.")
    if ctx.account.uin not in role.trusted:
        raise ApiError(
            "UnauthorizedOperation",
            f"The account `{ctx.account.uin}` is not a principal of the trust policy of `{role.arn}`.",
        )
    key = world.credentials.issue_temporary(owner, float(duration), role_name=role.name, session_name=session)
    expires = int(key["expires_at"])
    world.history.append(
        {
            "event": "role_assumed",
            "role": role.arn,
            "by": ctx.account.uin,
            "session": session,
            "secret_id": key["secret_id"],
            "at": ctx.now,
        }
    )
    return {
        "Credentials": {"Token": key["token"], "TmpSecretId": key["secret_id"], "TmpSecretKey": key["secret_key"]},
        "ExpiredTime": expires,
        "Expiration": iso8601(expires),
    }

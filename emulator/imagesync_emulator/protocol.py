"""The Tencent Cloud API 3.0 request pipeline, independent of the HTTP server.

``Dispatcher.handle(HttpRequest) -> HttpResponse`` does, in order: read the action and the Authorization header,
check the timestamp against the REAL clock, resolve the SecretId, verify the TC3 signature over the headers as
received (Host as is or without its port), check the session token, route by the signed service (the credential
scope) and the action, check the version, region and parameters, apply injected faults and rate limits, and run
the handler under the world lock. Every call is logged. Errors answer HTTP 200 with the error envelope, and the
Content-Type is exactly ``application/json`` (the SDK ignores error envelopes under any other type).

A "drop_after" fault lets the call run to its end (success or error, logged with ``answer_lost``) and then closes
the connection instead of answering. Audited actions (CreateImage) leave a CloudAudit CloudEvent in
``world.audit_events`` for every call the server processed: answered, or processed and its answer lost; never for
a call dropped or refused with HTTP 5xx before the server saw it.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from dataclasses import dataclass, field

from . import signature
from .accounts import Credential
from .audit import AuditedCall, cloud_event
from .calllog import CallLog
from .errors import ApiError, missing
from .faults import FaultInjector
from .params import Params, check_unknown
from .ratelimit import RateLimiter
from .services import CallContext, Service
from .services.eb import default_bus_id, route_event
from .world import World

MAX_SKEW_S = 300
JSON_CT = "application/json"
MAX_LOGGED_STRING = 4096


@dataclass
class HttpRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lowercase names, values as received
    body: bytes
    client_ip: str = ""  # the peer address (CloudAudit's sourceIPAddress)


@dataclass
class HttpResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": JSON_CT})
    drop: bool = False  # close the connection without answering
    delay: float = 0.0  # real seconds to wait before answering


def envelope(request_id: str, payload: dict) -> bytes:
    return json.dumps({"Response": {**payload, "RequestId": request_id}}, ensure_ascii=False).encode("utf-8")


def error_envelope(request_id: str, err: ApiError) -> bytes:
    return envelope(request_id, {"Error": {"Code": err.code, "Message": err.message}})


def _loggable(params: dict) -> dict:
    def trim(v: object) -> object:
        if isinstance(v, str) and len(v) > MAX_LOGGED_STRING:
            return v[:MAX_LOGGED_STRING] + "...<truncated>"
        if isinstance(v, dict):
            return {k: trim(x) for k, x in v.items()}
        if isinstance(v, list):
            return [trim(x) for x in v]
        return v

    return trim(copy.deepcopy(params))  # type: ignore[return-value]


@dataclass
class _Call:
    """What the pipeline learnt about a call so far (for the log)."""

    request_id: str
    arrived_at: float = 0.0  # emulated epoch seconds
    service: str | None = None
    action: str | None = None
    region: str | None = None
    account: str | None = None
    params: dict = field(default_factory=dict)
    credential: Credential | None = None
    secret_id: str = ""
    audited: bool = False  # the action is audited and the call got far enough to be recorded
    answer_lost: bool = False  # "drop_after": process the call, then close the connection unanswered
    latency: float = 0.0
    payload: dict | None = None


class Dispatcher:
    def __init__(
        self, world: World, services: dict[str, Service], calllog: CallLog, faults: FaultInjector, limiter: RateLimiter
    ) -> None:
        self.world = world
        self.services = services
        self.calllog = calllog
        self.faults = faults
        self.limiter = limiter

    def handle(self, req: HttpRequest) -> HttpResponse:
        # The call's time as CloudAudit records it: when it arrived, so never after the CreatedTime of what it made.
        call = _Call(request_id=str(uuid.uuid4()), arrived_at=self.world.clock.now())
        resp = HttpResponse()
        error: ApiError | None = None
        try:
            payload, resp = self._process(req, call, resp)
            call.payload = payload
            outcome = "ok"
            resp.body = envelope(call.request_id, payload)
        except _Fault as f:
            resp, outcome = f.response, f.outcome
            call.audited = False  # the server never saw the call
        except ApiError as err:
            outcome, error = err.code, err
            resp.body = error_envelope(call.request_id, err)
        except Exception as exc:  # a bug in a handler must still answer like the cloud does
            outcome = "InternalError"
            error = ApiError("InternalError", f"emulator bug: {exc!r}")
            resp.body = error_envelope(call.request_id, error)
        now = self.world.clock.now()
        if call.audited:
            self._audit(req, call, error)
        if call.answer_lost:
            # The call ran (and is logged with what it did); the caller only sees the connection close.
            resp = HttpResponse(drop=True, delay=call.latency)
        self.calllog.record(
            service=call.service,
            action=call.action,
            region=call.region,
            account=call.account,
            params=_loggable(call.params),
            outcome=outcome,
            request_id=call.request_id,
            emulated_time=now,
            answer_lost=call.answer_lost,
        )
        return resp

    def _audit(self, req: HttpRequest, call: _Call, error: ApiError | None) -> None:
        """Record the CloudAudit CloudEvent of an audited call (success or failure) in the world."""
        cred = call.credential
        if cred is None or call.action is None:
            return
        params = call.params if isinstance(call.params, dict) else {}
        instance_id = params.get("InstanceId")
        snapshots = params.get("SnapshotIds")
        images = params.get("ImageIds")
        created = (call.payload or {}).get("ImageId")
        audited = AuditedCall(
            action=call.action,
            region=call.region or "",
            uin=cred.account.uin,
            app_id=cred.account.app_id,
            secret_id=call.secret_id,
            temporary_key=cred.token is not None,
            request_id=call.request_id,
            params=copy.deepcopy(params),
            emulated_time=call.arrived_at,
            error_code=None if error is None else error.code,
            error_message="" if error is None else error.message,
            source_ip=req.client_ip,
            user_agent=req.headers.get("x-tc-requestclient") or req.headers.get("user-agent", ""),
            instance_ids=[instance_id] if isinstance(instance_id, str) and instance_id else [],
            snapshot_ids=[str(x) for x in snapshots] if isinstance(snapshots, list) else [],
            image_ids=[str(x) for x in images] if isinstance(images, list) else [],
            role_name=cred.role_name,
            created_image_id=created if isinstance(created, str) else None,
        )
        with self.world.lock:
            event_uuid = uuid.UUID(int=self.world.audit_rng.getrandbits(128), version=4)
            event = cloud_event(audited, event_uuid, include_image_id=self.world.settings.audit_include_image_id)
            self.world.audit_events.append(event)
            route_event(self.world, cred.account.uin, default_bus_id(self.world, cred.account.uin), event)

    def _process(self, req: HttpRequest, call: _Call, resp: HttpResponse) -> tuple[dict, HttpResponse]:
        h = req.headers
        call.action = h.get("x-tc-action") or None
        call.region = h.get("x-tc-region") or None
        if req.method != "POST":
            raise ApiError("UnsupportedProtocol", "The emulator serves POST requests with a JSON body only.")
        ctype = h.get("content-type", "")
        if ctype.split(";")[0].strip().lower() != JSON_CT:
            raise ApiError("InvalidParameter", f"Content-Type `{ctype}` is not supported; use {JSON_CT}.")
        if not call.action:
            raise missing("Action")
        auth_header = h.get("authorization")
        if not auth_header:
            raise ApiError("AuthFailure.InvalidAuthorization", "The Authorization header is missing.")
        auth = signature.parse_authorization(auth_header)
        if auth is None:
            raise ApiError("AuthFailure.InvalidAuthorization", "The Authorization header is malformed.")
        call.service = auth.service
        ts_text = h.get("x-tc-timestamp")
        if not ts_text:
            raise missing("Timestamp")
        try:
            ts = int(ts_text)
        except ValueError as exc:
            raise ApiError("InvalidParameter", "X-TC-Timestamp must be an integer.") from exc
        if abs(time.time() - ts) > MAX_SKEW_S:
            raise ApiError(
                "AuthFailure.SignatureExpire",
                "Signature expired: the timestamp differs from the server time by more than 5 minutes.",
            )
        cred = self.world.credentials.lookup(auth.secret_id)
        if cred is None:
            raise ApiError("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        call.account = cred.account.uin
        call.secret_id = auth.secret_id
        service = self.services.get(auth.service)
        host_service = h.get("host", "").split("://")[-1].split(".")[0]
        if service is None or (host_service in self.services and host_service != auth.service):
            raise ApiError(
                "AuthFailure.SignatureFailure",
                f"The credential scope names service `{auth.service}`, which this endpoint does not "
                "serve for this request.",
            )
        if auth.date != signature.utc_date(ts):
            raise ApiError("AuthFailure.SignatureFailure", "The credential scope date does not match X-TC-Timestamp.")
        if "content-type" not in auth.signed_headers or "host" not in auth.signed_headers:
            raise ApiError("AuthFailure.SignatureFailure", "SignedHeaders must include content-type and host.")
        if not signature.verify(cred.secret_key, auth, ts_text, req.method, req.path or "/", req.query, h, req.body):
            raise ApiError(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature is correct.",
            )
        token = h.get("x-tc-token")
        if cred.token is not None:
            if token != cred.token:
                raise ApiError("AuthFailure.TokenFailure", "The token is missing or does not match the temporary key.")
            if cred.expires_at is not None and time.time() > cred.expires_at:
                raise ApiError("AuthFailure.TokenFailure", "The temporary key has expired.")
        elif token:
            raise ApiError("AuthFailure.TokenFailure", "A token was sent with a long-term key.")
        action = service.actions.get(call.action)
        if action is None:
            raise ApiError("InvalidAction", f"The action `{call.action}` is not found in service `{service.name}`.")
        # From here on the caller is authenticated and the action known: CloudAudit records the call.
        call.credential = cred
        call.audited = action.audited
        version = h.get("x-tc-version")
        if not version:
            raise missing("Version")
        if version != service.version:
            raise ApiError("NoSuchVersion", f"The version `{version}` of service `{service.name}` does not exist.")
        if call.region is not None and not self.world.regions.exists(call.region):
            raise ApiError("UnsupportedRegion", f"The region `{call.region}` is not supported.")
        if action.needs_region and call.region is None:
            raise missing("Region")
        try:
            data = json.loads(req.body.decode("utf-8") or "{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError("InvalidParameter", f"The request body is not valid JSON: {exc}.") from exc
        if not isinstance(data, dict):
            raise ApiError("InvalidParameter", "The request body must be a JSON object.")
        call.params = data
        check_unknown(data, action.params)

        fault, latency = self.faults.pick(service.name, action.name)
        resp.delay = latency
        call.latency = latency
        if fault is not None and fault.kind == "drop_after":
            call.answer_lost = True  # handle() drops the answer once the call has run
        elif fault is not None:
            if fault.kind == "drop":
                raise _Fault(HttpResponse(drop=True, delay=latency), "ConnectionDropped")
            if fault.kind == "http5xx":
                body = f"<html><body><h1>{fault.status} Bad Gateway</h1></body></html>".encode()
                raise _Fault(
                    HttpResponse(status=fault.status, body=body, delay=latency, headers={"Content-Type": "text/html"}),
                    f"HTTP{fault.status}",
                )
            raise ApiError(fault.code, f"Injected fault: {fault.code}.")
        if not self.limiter.allow((cred.account.uin, service.name, action.name), action.rate):
            raise ApiError(
                "RequestLimitExceeded",
                f"Your current request times equals to `{action.rate}` in a second, which exceeds the frequency limit.",
            )
        if not action.locked:  # the handler takes the world lock itself (scf Invoke waits on a function)
            ctx = CallContext(
                world=self.world,
                account=cred.account,
                region=call.region,
                now=self.world.clock.now(),
                request_id=call.request_id,
                service=service.name,
                action=action.name,
            )
            return action.handler(ctx, Params(data)), resp
        with self.world.lock:
            ctx = CallContext(
                world=self.world,
                account=cred.account,
                region=call.region,
                now=self.world.clock.now(),
                request_id=call.request_id,
                service=service.name,
                action=action.name,
            )
            payload = action.handler(ctx, Params(data))
        return payload, resp


class _Fault(Exception):
    def __init__(self, response: HttpResponse, outcome: str) -> None:
        super().__init__(outcome)
        self.response = response
        self.outcome = outcome

"""The service's rich error details (google.rpc.ErrorInfo, BadRequest, RequestInfo, RetryInfo),
read from a failed call's `grpc-status-details-bin` trailer through grpcio-status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

#: The ErrorInfo domain of every error this service sends.
DOMAIN = "integrations.founderhouse"


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field, named as the caller sent it (e.g. `credentials.account_sid`)."""

    field: str
    description: str


@dataclass(frozen=True)
class ErrorDetails:
    """What a failed call says: the gRPC code and message, and the details the service attached.

    `reason` is the UPPER_SNAKE reason from ErrorInfo (README, "Callers, roles, errors"); it is
    empty only for errors that did not come from the service (e.g. a refused connection).
    """

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    field_violations: tuple[FieldViolation, ...] = ()
    request_id: str = ""
    #: Seconds to wait before retrying, when the service sent RetryInfo.
    retry_delay: float | None = None


def error_info(exc: BaseException) -> ErrorDetails | None:
    """The details of a failed gRPC call, or None when `exc` is not one.

    Raises ValueError (from grpcio-status) if the details contradict the call's own status,
    which would be a bug in the server.
    """
    if not isinstance(exc, grpc.RpcError) or not isinstance(exc, grpc.Call):
        return None
    code = exc.code()
    message = exc.details() or ""
    status: status_pb2.Status | None = rpc_status.from_call(exc)
    if status is None:
        return ErrorDetails(code=code, message=message)
    reason = domain = request_id = ""
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    retry_delay: float | None = None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
        elif detail.Is(error_details_pb2.RequestInfo.DESCRIPTOR):
            req = error_details_pb2.RequestInfo()
            detail.Unpack(req)
            request_id = req.request_id
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_delay = retry.retry_delay.ToTimedelta().total_seconds()
    return ErrorDetails(
        code=code,
        message=message,
        reason=reason,
        domain=domain,
        metadata=metadata,
        field_violations=tuple(violations),
        request_id=request_id,
        retry_delay=retry_delay,
    )

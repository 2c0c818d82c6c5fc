"""Adds `authorization: Bearer <token>` to every call of a channel."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")

#: A fixed token, or a function returning the current one (called once per call, so it can refresh).
TokenSource = str | Callable[[], str]


class _Details(grpc.ClientCallDetails):
    """The call's details with the authorization header added to its metadata."""

    def __init__(self, base: grpc.ClientCallDetails, token: str) -> None:
        kept = tuple((k, v) for k, v in (base.metadata or ()) if k.lower() != "authorization")
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = (*kept, ("authorization", f"Bearer {token}"))
        self.credentials = base.credentials
        self.wait_for_ready = base.wait_for_ready
        self.compression = base.compression


class BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Metadata rather than call credentials: gRPC only sends call credentials over TLS or
    loopback, and internal callers often speak plain h2c inside a cluster."""

    def __init__(self, token: TokenSource) -> None:
        self._token = token

    def __repr__(self) -> str:
        # Never show the token, even in a debugger or a traceback's locals.
        return "BearerToken([redacted])"

    def _details(self, base: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        token = self._token() if callable(self._token) else self._token
        return _Details(base, token)

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, _Req], grpc._CallFuture[_Resp]],
        client_call_details: grpc.ClientCallDetails,
        request: _Req,
    ) -> grpc._CallFuture[_Resp]:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, _Req], grpc._CallIterator[_Resp]],
        client_call_details: grpc.ClientCallDetails,
        request: _Req,
    ) -> grpc._CallIterator[_Resp]:
        return continuation(self._details(client_call_details), request)

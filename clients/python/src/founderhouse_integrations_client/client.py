"""One channel to the service with every stub on it and the caller's bearer token on every call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from founderhouse.integrations.v1 import (
    connectors_pb2_grpc,
    health_pb2,
    health_pb2_grpc,
    integrations_pb2_grpc,
    oauth_pb2_grpc,
)

from ._auth import BearerToken, TokenSource
from .watch import HealthWatch


class Client:
    """The service's four gRPC services over one HTTP/2 channel.

    `target` is `host:port` or a URL: `http://` is plain h2c, `https://` is TLS with the system's
    roots (or `credentials`, if given). `token` is the caller's JWT, or a function returning the
    current one; without it calls are anonymous and the service answers UNAUTHENTICATED.

        with Client("http://127.0.0.1:50051", token=jwt) as fh:
            fh.integrations.ListIntegrations(integrations_pb2.ListIntegrationsRequest())
    """

    def __init__(
        self,
        target: str,
        token: TokenSource | None = None,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        address, tls = _address(target)
        if tls and credentials is None:
            credentials = grpc.ssl_channel_credentials()
        if credentials is not None:
            channel = grpc.secure_channel(address, credentials, options=list(options))
        else:
            channel = grpc.insecure_channel(address, options=list(options))
        self._raw = channel
        self.channel = channel if token is None else grpc.intercept_channel(channel, BearerToken(token))
        self.integrations = integrations_pb2_grpc.IntegrationServiceStub(self.channel)
        self.oauth = oauth_pb2_grpc.OAuthServiceStub(self.channel)
        self.connectors = connectors_pb2_grpc.ConnectorServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthServiceStub(self.channel)

    def watch_health_events(
        self,
        request: health_pb2.WatchHealthEventsRequest | None = None,
        *,
        max_retries: int | None = None,
    ) -> HealthWatch:
        """WatchHealthEvents that resumes from its last seq after a disconnect (see HealthWatch)."""
        return HealthWatch(self.health, request, max_retries=max_retries)

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _address(target: str) -> tuple[str, bool]:
    """`host:port` and whether to use TLS, from `host:port`, `http://...` or `https://...`."""
    for scheme, tls in (("https://", True), ("http://", False)):
        if target.startswith(scheme):
            return target[len(scheme) :].rstrip("/"), tls
    return target, False

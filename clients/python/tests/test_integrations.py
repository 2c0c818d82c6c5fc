"""The integration lifecycle through the generated client: connect, list, get, update, test,
disconnect; and what a call without a token gets."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2

from fakes import FIREFLIES_KEY
from founderhouse.integrations.v1 import common_pb2, integrations_pb2 as pb
from founderhouse_integrations_client import error_info
from harness import FakeServer, Service


def test_fireflies_is_connected_listed_read_updated_tested_and_disconnected(
    service: Service, fireflies: FakeServer
) -> None:
    tokens_asked = 0

    def token() -> str:
        nonlocal tokens_asked
        tokens_asked += 1
        return jwt

    jwt = service.token(role="admin")
    with service.client(token) as fh:
        metadata = struct_pb2.Struct()
        metadata.update({"team": "sales"})
        connected = fh.integrations.ConnectIntegration(pb.ConnectIntegrationRequest(
            platform=common_pb2.PLATFORM_FIREFLIES,
            credentials={"api_key": FIREFLIES_KEY},
            display_name="Sales calls",
            metadata=metadata,
        )).integration
        assert connected.platform == common_pb2.PLATFORM_FIREFLIES
        assert connected.status == common_pb2.INTEGRATION_STATUS_CONNECTED
        assert connected.display_name == "Sales calls"
        assert list(connected.credential_fields) == ["api_key"]
        assert connected.name.endswith(f"/integrations/{connected.id}")

        listed = fh.integrations.ListIntegrations(pb.ListIntegrationsRequest()).integrations
        assert [i.id for i in listed] == [connected.id]

        got = fh.integrations.GetIntegration(pb.GetIntegrationRequest(name=connected.id)).integration
        assert got.name == connected.name
        assert dict(got.metadata) == {"team": "sales"}

        update = pb.Integration(name=connected.name, display_name="Board calls")
        updated = fh.integrations.UpdateIntegration(pb.UpdateIntegrationRequest(
            integration=update, update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        )).integration
        assert updated.display_name == "Board calls"
        assert dict(updated.metadata) == {"team": "sales"}

        tested = fh.integrations.TestIntegration(pb.TestIntegrationRequest(name=connected.id))
        assert tested.healthy, tested.message
        # The connection test reached the fake with the stored key.
        assert fireflies.requests[-1].headers["authorization"] == f"Bearer {FIREFLIES_KEY}"

        gone = fh.integrations.DisconnectIntegration(pb.DisconnectIntegrationRequest(name=connected.name))
        assert gone.integration.status == common_pb2.INTEGRATION_STATUS_REVOKED
        after = fh.integrations.ListIntegrations(
            pb.ListIntegrationsRequest(status=common_pb2.INTEGRATION_STATUS_CONNECTED)
        ).integrations
        assert list(after) == []
    # The token getter ran for every call: a client can hand out fresh tokens.
    assert tokens_asked == 7


def test_a_call_without_a_token_is_unauthenticated(service: Service) -> None:
    with service.client() as anonymous, pytest.raises(grpc.RpcError) as caught:
        anonymous.integrations.ListIntegrations(pb.ListIntegrationsRequest())

    details = error_info(caught.value)
    assert details is not None
    assert details.code == grpc.StatusCode.UNAUTHENTICATED
    assert details.reason == "UNAUTHENTICATED"
    assert details.domain == "integrations.founderhouse"

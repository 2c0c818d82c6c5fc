"""error_info() reads the service's ErrorInfo, field violations and request id from real errors."""

from __future__ import annotations

import uuid

import grpc
import pytest

from founderhouse.integrations.v1 import common_pb2, integrations_pb2 as pb
from founderhouse_integrations_client import DOMAIN, FieldViolation, error_info
from harness import Service


def test_a_bad_zerovoice_sid_names_the_field_in_a_bad_request_violation(service: Service) -> None:
    with service.client(service.token(role="member")) as fh, pytest.raises(grpc.RpcError) as caught:
        fh.integrations.ConnectIntegration(pb.ConnectIntegrationRequest(
            platform=common_pb2.PLATFORM_ZEROVOICE,
            credentials={"account_sid": "not-a-sid", "auth_token": "zv-token"},
        ))

    details = error_info(caught.value)
    assert details is not None
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "INVALID_ARGUMENT"
    assert details.domain == DOMAIN
    assert [v.field for v in details.field_violations] == ["credentials.account_sid"]
    assert details.request_id
    # What the caller sent stays out of the answer.
    assert "zv-token" not in repr(details)


def test_another_workspaces_integration_is_integration_not_found(service: Service) -> None:
    with service.client(service.token()) as fh, pytest.raises(grpc.RpcError) as caught:
        fh.integrations.GetIntegration(pb.GetIntegrationRequest(name=str(uuid.uuid4())))

    details = error_info(caught.value)
    assert details is not None
    assert details.code == grpc.StatusCode.NOT_FOUND
    assert details.reason == "INTEGRATION_NOT_FOUND"
    assert details.field_violations == ()


def test_error_info_is_none_for_anything_but_a_grpc_error() -> None:
    assert error_info(ValueError("not a call")) is None
    assert FieldViolation("a", "b") == FieldViolation("a", "b")

"""Fixtures: a fake Fireflies GraphQL API and the real service wired to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakes import fireflies_graphql
from harness import FakeServer, Service


@pytest.fixture
def fireflies() -> Iterator[FakeServer]:
    fake = FakeServer(fireflies_graphql)
    yield fake
    fake.close()


@pytest.fixture
def service(fireflies: FakeServer) -> Iterator[Service]:
    svc = Service({"FH_FIREFLIES_BASE_URL": f"{fireflies.url}/graphql"})
    yield svc
    svc.stop()

"""Fixtures: a fake Fireflies GraphQL API and the real service wired to it. A failed test shows
the service's log (which never holds a token or secret) under "Captured stdout teardown"."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from fakes import fireflies_graphql
from harness import FakeServer, Service, finish_drops

_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture(scope="session", autouse=True)
def _drop_databases_at_the_end() -> Iterator[None]:
    yield
    finish_drops()


@pytest.fixture
def fireflies() -> Iterator[FakeServer]:
    fake = FakeServer(fireflies_graphql)
    yield fake
    fake.close()


@pytest.fixture
def service(request: pytest.FixtureRequest, fireflies: FakeServer) -> Iterator[Service]:
    svc = Service({"FH_FIREFLIES_BASE_URL": f"{fireflies.url}/graphql"})
    yield svc
    svc.stop()
    if request.node.stash.get(_FAILED, False):
        print("service log:\n" + svc.logs()[-20_000:])

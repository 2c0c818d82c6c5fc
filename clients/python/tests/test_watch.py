"""WatchHealthEvents through the client: the snapshot, live changes, and the resume by seq after
the connection to the service is cut."""

from __future__ import annotations

import queue
import threading

from fakes import FIREFLIES_KEY
from founderhouse.integrations.v1 import common_pb2, health_pb2, integrations_pb2 as pb
from founderhouse_integrations_client import Client, HealthWatch
from harness import Relay, Service, eventually

#: gRPC's own reconnect backoff starts at 1 s and grows to 2 minutes; a test waits less.
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 50), ("grpc.max_reconnect_backoff_ms", 500))


class Reader:
    """Consumes a watch on a thread of its own, so the test can wait for events with a deadline."""

    def __init__(self, watch: HealthWatch) -> None:
        self.watch = watch
        self._events: queue.Queue[health_pb2.HealthEvent | BaseException] = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self.watch:
                self._events.put(event)
        except BaseException as err:  # handed to the test thread
            self._events.put(err)

    def next(self, timeout: float = 10.0) -> health_pb2.HealthEvent:
        try:
            item = self._events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no health event within {timeout} s") from None
        if isinstance(item, BaseException):
            raise item
        return item

    def take(self, n: int) -> list[health_pb2.HealthEvent]:
        return [self.next() for _ in range(n)]

    def stop(self) -> None:
        self.watch.cancel()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the watch did not end after cancel()"


def connect(fh: Client, key: str, account: str = "") -> pb.Integration:
    return fh.integrations.ConnectIntegration(pb.ConnectIntegrationRequest(
        platform=common_pb2.PLATFORM_FIREFLIES, credentials={"api_key": key}, provider_account_id=account,
    )).integration


def check(fh: Client, integration: pb.Integration) -> None:
    fh.health.CheckIntegration(health_pb2.CheckIntegrationRequest(name=integration.id))


def summary(events: list[health_pb2.HealthEvent]) -> list[tuple[int, str, str, str, bool]]:
    return [(e.seq, e.integration, common_pb2.HealthState.Name(e.state), e.reason, e.snapshot) for e in events]


def test_the_stream_sends_a_snapshot_then_each_change_as_it_commits(service: Service) -> None:
    with service.client(service.token(role="admin")) as fh:
        good = connect(fh, FIREFLIES_KEY)
        reader = Reader(fh.watch_health_events())
        try:
            snapshot = reader.next()
            assert (snapshot.integration, snapshot.state, snapshot.snapshot) == (
                good.name, common_pb2.HEALTH_STATE_UNKNOWN, True)

            check(fh, good)
            healthy = reader.next()
            bad = connect(fh, "a-revoked-key", account="second")
            check(fh, bad)
            fh.integrations.DisconnectIntegration(pb.DisconnectIntegrationRequest(name=good.id))
            rest = reader.take(3)
        finally:
            reader.stop()

    assert (healthy.previous_state, healthy.state, healthy.snapshot) == (
        common_pb2.HEALTH_STATE_UNKNOWN, common_pb2.HEALTH_STATE_HEALTHY, False)
    assert healthy.seq > snapshot.seq
    assert [(i, s, r) for _, i, s, r, _ in summary(rest)] == [
        (bad.name, "HEALTH_STATE_UNKNOWN", "CONNECTED"),
        (bad.name, "HEALTH_STATE_NEEDS_REAUTH", "NEEDS_REAUTH"),
        (good.name, "HEALTH_STATE_REVOKED", "DISCONNECTED"),
    ]
    seqs = [healthy.seq] + [e.seq for e in rest]
    assert seqs == sorted(set(seqs))


def test_the_watch_resumes_after_a_cut_connection_from_its_last_seq_without_loss_or_repeat(
    service: Service,
) -> None:
    token = service.token(role="admin")
    relay = Relay(service.grpc)
    with service.client(token) as fh, service.client(token, relay.address, FAST_RECONNECT) as through_relay:
        good = connect(fh, FIREFLIES_KEY)
        reader = Reader(through_relay.watch_health_events())
        try:
            reader.next()  # the snapshot
            check(fh, good)
            assert reader.next().state == common_pb2.HEALTH_STATE_HEALTHY
            resumed_from = reader.watch.last_seq

            relay.cut()
            # A positive sign the watcher saw the outage: it has tried to reconnect, and failed.
            eventually(lambda: reader.watch.reconnects >= 2, what="a failed reconnect")
            bad = connect(fh, "a-revoked-key", account="second")
            check(fh, bad)
            fh.integrations.DisconnectIntegration(pb.DisconnectIntegrationRequest(name=good.id))
            relay.restore()
            after_gap = reader.take(3)
        finally:
            reader.stop()
            relay.close()

        # What the table holds after that seq, read by a fresh stream of its own.
        replay = Reader(HealthWatch(fh.health, health_pb2.WatchHealthEventsRequest(after_seq=resumed_from)))
        try:
            expected = replay.take(3)
        finally:
            replay.stop()

    assert summary(after_gap) == summary(expected)
    assert [e.integration for e in after_gap] == [bad.name, bad.name, good.name]
    assert all(e.seq > resumed_from and not e.snapshot for e in after_gap)


def test_a_watch_cut_before_any_live_event_starts_again_with_a_fresh_snapshot(service: Service) -> None:
    token = service.token(role="admin")
    relay = Relay(service.grpc)
    with service.client(token) as fh, service.client(token, relay.address, FAST_RECONNECT) as through_relay:
        good = connect(fh, FIREFLIES_KEY)
        reader = Reader(through_relay.watch_health_events())
        try:
            first = reader.next()
            relay.cut()
            eventually(lambda: reader.watch.reconnects >= 2, what="a failed reconnect")
            check(fh, good)
            relay.restore()
            again = reader.next()
        finally:
            reader.stop()
            relay.close()

    # Snapshot events share one seq, so resuming after it could skip the rest of a cut snapshot:
    # the watch asks for a new one, which already shows the change made during the outage.
    assert (first.snapshot, first.state) == (True, common_pb2.HEALTH_STATE_UNKNOWN)
    assert (again.snapshot, again.integration, again.state) == (True, good.name, common_pb2.HEALTH_STATE_HEALTHY)
    assert again.seq > first.seq

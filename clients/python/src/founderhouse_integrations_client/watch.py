"""WatchHealthEvents as an iterator that survives disconnects by resuming from its last seq."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import grpc

from founderhouse.integrations.v1 import health_pb2, health_pb2_grpc

#: Codes after which the stream is reopened. The service ends streams with UNAVAILABLE at
#: shutdown; a lost connection is UNAVAILABLE too. Anything else (EVENTS_EXPIRED, a bad filter,
#: an expired token) is the caller's to handle and is raised.
RESUMABLE = frozenset({grpc.StatusCode.UNAVAILABLE})


class HealthWatch(Iterator[health_pb2.HealthEvent]):
    """Yields health events, reopening the stream after a disconnect with `after_seq` = the
    last seq received, so no event is lost or repeated across the gap.

    A stream that began with a snapshot (after_seq 0) and was cut before any live event arrived
    starts again with a snapshot: every snapshot event carries the same seq, so resuming after
    it could skip the rest of a cut snapshot. Snapshot events are states, so seeing some twice is
    harmless.

    Reconnects back off exponentially (full jitter) from `initial_backoff` to `max_backoff`
    seconds; after `max_retries` failed reconnects in a row (None: never) the last error is
    raised. `cancel()`, from any thread, ends the iteration.
    """

    def __init__(
        self,
        stub: health_pb2_grpc.HealthServiceStub,
        request: health_pb2.WatchHealthEventsRequest | None = None,
        *,
        initial_backoff: float = 0.05,
        max_backoff: float = 5.0,
        max_retries: int | None = None,
    ) -> None:
        self._stub = stub
        self._request = health_pb2.WatchHealthEventsRequest()
        if request is not None:
            self._request.CopyFrom(request)
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._max_retries = max_retries
        self._call: grpc._CallIterator[health_pb2.HealthEvent] | None = None
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._failures = 0
        self._in_snapshot = self._request.after_seq == 0
        #: The seq of the last event yielded; the next stream starts after it.
        self.last_seq = self._request.after_seq
        #: How many times the stream was reopened after a disconnect.
        self.reconnects = 0

    def __iter__(self) -> HealthWatch:
        return self

    def __next__(self) -> health_pb2.HealthEvent:
        while not self._cancelled.is_set():
            call = self._open()
            try:
                event = next(call)
            except grpc.RpcError as err:
                self._drop(call)
                if self._cancelled.is_set():
                    break
                if not isinstance(err, grpc.Call) or err.code() not in RESUMABLE:
                    raise
                self._failures += 1
                if self._max_retries is not None and self._failures > self._max_retries:
                    raise
                self._backoff()
                self.reconnects += 1
                continue
            self._failures = 0
            self._in_snapshot = event.snapshot
            self.last_seq = max(self.last_seq, event.seq)
            return event
        raise StopIteration

    def cancel(self) -> None:
        """Ends the iteration: a blocked `next()` returns StopIteration promptly."""
        self._cancelled.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()

    def _open(self) -> grpc._CallIterator[health_pb2.HealthEvent]:
        with self._lock:
            if self._call is None:
                request = health_pb2.WatchHealthEventsRequest()
                request.CopyFrom(self._request)
                request.after_seq = 0 if self._in_snapshot else self.last_seq
                self._call = self._stub.WatchHealthEvents(request)
                # cancel() sets the flag before taking the lock: either it sees this call, or
                # this sees the flag, so a cancel racing a reconnect cannot leave next() blocked.
                if self._cancelled.is_set():
                    self._call.cancel()
            return self._call

    def _drop(self, call: grpc._CallIterator[health_pb2.HealthEvent]) -> None:
        with self._lock:
            if self._call is call:
                self._call = None

    def _backoff(self) -> None:
        ceiling = min(self._max_backoff, self._initial_backoff * 2 ** min(self._failures, 16))
        # Full jitter keeps many clients of a restarted replica from reconnecting in lockstep.
        self._cancelled.wait(random.uniform(0, ceiling))

"""Connect Fireflies, list the workspace's integrations, then print health events as they come.

    FH_TOKEN=$(founderhouse-integrations token --workspace "$WS" --role admin) \
      python examples/connect_and_watch.py http://127.0.0.1:50051 ff-your-key
"""

from __future__ import annotations

import os
import sys

import grpc

from founderhouse.integrations.v1 import common_pb2, health_pb2, integrations_pb2
from founderhouse_integrations_client import Client, error_info


def main(target: str, api_key: str) -> int:
    with Client(target, token=os.environ["FH_TOKEN"]) as fh:
        try:
            fh.integrations.ConnectIntegration(integrations_pb2.ConnectIntegrationRequest(
                platform=common_pb2.PLATFORM_FIREFLIES,
                credentials={"api_key": api_key},
                display_name="Sales calls",
            ))
        except grpc.RpcError as err:
            info = error_info(err)
            if info is None:
                raise
            # Already connected is fine for this example; anything else is explained and ends it.
            if info.reason != "INTEGRATION_ALREADY_EXISTS":
                print(f"connect failed: {info.reason}: {info.message}", file=sys.stderr)
                for v in info.field_violations:
                    print(f"  {v.field}: {v.description}", file=sys.stderr)
                return 1
        listed = fh.integrations.ListIntegrations(integrations_pb2.ListIntegrationsRequest())
        for i in listed.integrations:
            print(f"{i.id} {common_pb2.Platform.Name(i.platform)} {common_pb2.HealthState.Name(i.health_state)}")
        # Snapshot first, then every change; reconnects resume from the last seq by themselves.
        for event in fh.watch_health_events(health_pb2.WatchHealthEventsRequest()):
            state = common_pb2.HealthState.Name(event.state)
            print(f"#{event.seq} {event.integration} {state} {event.reason}".rstrip(), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))

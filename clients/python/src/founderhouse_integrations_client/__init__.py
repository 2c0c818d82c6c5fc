"""Python client of the FounderHouse Integrations service.

The generated messages and stubs are in `founderhouse.integrations.v1` (`integrations_pb2`,
`health_pb2`, ... and their `_pb2_grpc` stubs); this package adds the thin layer around them.
"""

from ._auth import TokenSource
from .client import Client
from .errors import DOMAIN, ErrorDetails, FieldViolation, error_info
from .watch import RESUMABLE, HealthWatch

__all__ = [
    "DOMAIN",
    "RESUMABLE",
    "Client",
    "ErrorDetails",
    "FieldViolation",
    "HealthWatch",
    "TokenSource",
    "error_info",
]

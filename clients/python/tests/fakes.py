"""Fake providers: answers shaped like the providers' documentation."""

from __future__ import annotations

from harness import Answer, Seen

#: The API key the fake Fireflies accepts.
FIREFLIES_KEY = "ff-test-key-3c9e7a1d"


def fireflies_graphql(seen: Seen) -> Answer:
    """Fireflies' GraphQL endpoint as its documentation describes it (and as tests/api's fake
    does): a bearer API key, `{"data": ...}`, or `{"errors": [...]}` with the HTTP status."""
    if seen.method != "POST" or seen.path != "/graphql":
        return Answer(404, {"errors": [{"message": "not found"}]})
    if seen.headers.get("authorization") != f"Bearer {FIREFLIES_KEY}":
        return Answer(401, {"errors": [{"message": "Invalid API key",
                                        "extensions": {"code": "invalid_api_key", "status": 401}}]})
    if "user {" in seen.json().get("query", ""):
        return Answer(200, {"data": {"user": {"user_id": "u-1", "email": "ada@example.com", "name": "Ada"}}})
    return Answer(400, {"errors": [{"message": "this fake answers the identity query only"}]})

//! The OpenAPI 3.1 document of the REST gateway, served at `/api/v1/openapi.json`.

use serde_json::{Value, json};

pub fn document() -> Value {
    let error = json!({"$ref": "#/components/responses/Error"});
    let id_param = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}});
    let platform_param = json!({"name": "platform", "in": "path", "required": true, "schema": {"type": "string", "enum": ["zoom", "slack", "discord", "outlook", "monday", "notion", "gmail", "loom", "custom"]}});
    let integration_id_query = json!({"name": "integration_id", "in": "query", "required": true, "schema": {"type": "string", "format": "uuid"}});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "FounderHouse Integrations REST gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "REST mirror of IntegrationService and OAuthService. Every endpoint but the probes and the OAuth callback takes `Authorization: Bearer <JWT>`; the workspace comes from the token."
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Integration": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "name": {"type": "string", "description": "workspaces/{w}/integrations/{id}"},
                        "workspace_id": {"type": "string", "format": "uuid"},
                        "platform": {"type": "string"},
                        "status": {"type": "string", "enum": ["pending", "connected", "needs_reauth", "error", "revoked"]},
                        "status_reason": {"type": ["string", "null"]},
                        "display_name": {"type": "string"},
                        "metadata": {"type": "object"},
                        "provider_account_id": {"type": "string"},
                        "credential_fields": {"type": "array", "items": {"type": "string"}, "description": "names only; values never leave the service"},
                        "scopes": {"type": "array", "items": {"type": "string"}},
                        "health_state": {"type": "string"},
                        "credential_expires_at": {"type": ["string", "null"], "format": "date-time"},
                        "last_checked_at": {"type": ["string", "null"], "format": "date-time"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "updated_at": {"type": "string", "format": "date-time"}
                    }
                },
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "object", "properties": {
                            "code": {"type": "integer"}, "status": {"type": "string"}, "reason": {"type": "string"},
                            "message": {"type": "string"}, "domain": {"type": "string"}, "metadata": {"type": "object"},
                            "field_violations": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "description": {"type": "string"}}}},
                            "request_id": {"type": "string"}
                        }},
                        "detail": {"type": "string"}
                    }
                }
            },
            "responses": {
                "Error": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {"security": [], "summary": "liveness", "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"security": [], "summary": "readiness: database reachable and migrated, not shutting down", "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
            "/metrics": {"get": {"security": [], "summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition format"}}}},
            "/api/v1/oauth/{platform}/authorize": {
                "parameters": [platform_param],
                "post": {
                    "summary": "start an OAuth connection (members and up): the provider's consent URL",
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                        "return_to": {"type": "string", "format": "uri", "description": "where the browser lands after the callback; must be on the origin and under the path of FH_FRONTEND_URL or an FH_CORS_ORIGINS entry"}
                    }}}}},
                    "responses": {"200": {"description": "started", "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "authorization_url": {"type": "string", "format": "uri"},
                        "state": {"type": "string", "description": "also inside authorization_url; single use, expires after 10 minutes"},
                        "platform": {"type": "string"},
                        "state_expire_time": {"type": "string", "format": "date-time"}
                    }}}}}, "400": error, "401": error, "403": error}
                }
            },
            "/api/v1/oauth/{platform}/callback": {
                "parameters": [platform_param],
                "get": {
                    "security": [],
                    "summary": "where the provider sends the browser; calls no provider",
                    "description": "Uses the state up, seals the code into a one-time handle (5 minutes) and answers 303 to the return target with `?oauth_handle=<opaque>&platform=`, or `?error=<reason>&platform=`. Always a 303, with `Referrer-Policy: no-referrer`.",
                    "parameters": [
                        {"name": "code", "in": "query", "schema": {"type": "string"}},
                        {"name": "state", "in": "query", "schema": {"type": "string"}},
                        {"name": "error", "in": "query", "schema": {"type": "string"}},
                        {"name": "iss", "in": "query", "schema": {"type": "string"}}
                    ],
                    "responses": {"303": {"description": "to the frontend, with `oauth_handle` or `error`"}}
                }
            },
            "/api/v1/oauth/{platform}/complete": {
                "parameters": [platform_param],
                "post": {
                    "summary": "redeem the callback's handle: exchange the code and store the grant",
                    "description": "Only the user (`sub`) and workspace that started the flow may complete it (403 `AUTHORIZATION_STARTED_BY_ANOTHER_USER` otherwise). Single use (`HANDLE_REUSED`), expires after 5 minutes (`HANDLE_EXPIRED`); an unknown handle is 404 `HANDLE_NOT_FOUND`.",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["handle"], "properties": {
                        "handle": {"type": "string", "description": "the `oauth_handle` the callback sent the browser back with"}
                    }}}}},
                    "responses": {"200": {"description": "connected", "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "integration": {"$ref": "#/components/schemas/Integration"},
                        "warning": {"type": ["string", "null"], "enum": ["scope_missing", null], "description": "scope_missing when the provider granted no refresh token where one is needed"}
                    }}}}}, "400": error, "401": error, "403": error, "404": error, "503": error}
                }
            },
            "/api/v1/oauth/{platform}/refresh": {
                "parameters": [platform_param, integration_id_query],
                "post": {"summary": "refresh the integration's tokens now (members and up)", "responses": {"200": {"description": "refreshed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Integration"}}}}, "400": error, "403": error, "404": error, "503": error}}
            },
            "/api/v1/oauth/{platform}/revoke": {
                "parameters": [platform_param, integration_id_query],
                "delete": {"summary": "revoke upstream and destroy the credentials (admins and up)", "responses": {"200": {"description": "disconnected, with what was revoked upstream"}, "400": error, "403": error, "404": error}}
            },
            "/api/v1/integrations/connect": {"post": {
                "summary": "connect an API-key or token platform",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["platform", "credentials"], "properties": {
                    "platform": {"type": "string", "enum": ["fireflies", "otter", "granola", "zerodb", "zerovoice", "slack", "discord", "monday", "notion"]},
                    "credentials": {"type": "object", "additionalProperties": {"type": "string"}},
                    "display_name": {"type": "string"},
                    "metadata": {"type": "object"},
                    "provider_account_id": {"type": "string"}
                }}}}},
                "responses": {"201": {"description": "connected", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Integration"}}}}, "400": error, "401": error, "403": error, "409": error}
            }},
            "/api/v1/integrations": {"get": {
                "summary": "list the workspace's integrations, oldest first",
                "parameters": [
                    {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 100}},
                    {"name": "page_token", "in": "query", "schema": {"type": "string"}},
                    {"name": "platform", "in": "query", "schema": {"type": "string"}},
                    {"name": "status", "in": "query", "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "a page", "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "integrations": {"type": "array", "items": {"$ref": "#/components/schemas/Integration"}},
                    "next_page_token": {"type": "string"}
                }}}}}, "400": error, "401": error}
            }},
            "/api/v1/integrations/{id}": {
                "parameters": [id_param],
                "get": {"summary": "one integration", "responses": {"200": {"description": "found", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Integration"}}}}, "404": error}},
                "patch": {"summary": "change display_name and merge metadata (RFC 7386)", "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"display_name": {"type": "string"}, "metadata": {"type": "object"}}}}}}, "responses": {"200": {"description": "updated"}, "400": error, "404": error}},
                "delete": {"summary": "disconnect: destroy credentials, mark revoked", "responses": {"200": {"description": "disconnected, with what was revoked upstream"}, "403": error, "404": error}}
            },
            "/api/v1/integrations/health-dashboard": {"get": {
                "summary": "the workspace's health from stored state: summary, status_breakdown, platform_health, recent_errors, last_updated",
                "responses": {"200": {"description": "the dashboard"}, "401": error}
            }},
            "/api/v1/integrations/status": {"get": {
                "summary": "counts by status and each live integration's stored health",
                "responses": {"200": {"description": "the workspace status"}, "401": error}
            }},
            "/api/v1/integrations/{id}/health": {
                "parameters": [id_param],
                "get": {"summary": "the integration's stored health (IntegrationHealthCheck)", "responses": {"200": {"description": "found"}, "404": error}}
            },
            "/api/v1/integrations/{id}/health/check": {
                "parameters": [id_param],
                "post": {"summary": "probe now (members and up) and record the check", "responses": {"200": {"description": "the check, state after hysteresis"}, "403": error, "404": error}}
            },
            "/api/v1/integrations/{id}/health/history": {
                "parameters": [id_param],
                "get": {
                    "summary": "checks, newest first",
                    "parameters": [
                        {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 100}},
                        {"name": "page_token", "in": "query", "schema": {"type": "string"}}
                    ],
                    "responses": {"200": {"description": "a page of checks"}, "400": error, "404": error}
                }
            }
        }
    })
}

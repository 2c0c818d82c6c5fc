//! GraphQL over the HTTP core (Fireflies, Monday.com). Queries are constants; every value
//! travels in `variables`, never in the query text. A 200 with `errors[]` (or Monday's
//! `error_code` envelope) is an error.

use http::{HeaderMap, Method, StatusCode};
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::transport::{ProviderRequest, rate_limited, rejection};
use super::{Field, Page, Params, Schema, Session};
use crate::error::Error;

/// How a GraphQL error reads as an HTTP status: `extensions.status` (or Monday's
/// `extensions.status_code`) when the server says it is an error status, else from its code.
fn status_of(error: &Value) -> StatusCode {
    // Monday puts `status_code: 200` on some application errors (ColumnValueException): only an
    // error status says something.
    if let Some(s) = ["/extensions/status", "/extensions/status_code"]
        .iter()
        .filter_map(|p| error.pointer(p).and_then(Value::as_u64))
        .filter_map(|s| u16::try_from(s).ok())
        .filter_map(|s| StatusCode::from_u16(s).ok())
        .find(|s| s.is_client_error() || s.is_server_error())
    {
        return s;
    }
    let code = error
        .pointer("/extensions/code")
        .or_else(|| error.get("code"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    if code.contains("unauthenticated")
        || code.contains("auth_failed")
        || code.contains("invalid_api_key")
        || code.contains("unauthorized")
    {
        StatusCode::UNAUTHORIZED
    } else if code.contains("forbidden") {
        StatusCode::FORBIDDEN
    } else if code.contains("not_found") {
        StatusCode::NOT_FOUND
    } else if code.contains("too_many")
        || code.contains("rate_limit")
        || code.contains("ratelimit")
        || code.contains("complexity_budget")
    {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// The first error of an answer, as a GraphQL error object. Besides `errors[]` of objects this
/// reads Monday's other shapes: `errors` as a list of strings, and a top-level
/// `error_code`/`error_message`/`status_code` envelope (complexity budget, legacy errors), which
/// arrive as HTTP 200 and are errors all the same.
fn first_error(answer: &Value) -> Option<Value> {
    let envelope_code = answer.get("error_code").filter(|v| !v.is_null());
    let envelope_message = answer.get("error_message").filter(|v| !v.is_null());
    let envelope = || {
        let mut extensions = serde_json::Map::new();
        if let Some(code) = envelope_code {
            extensions.insert("code".into(), code.clone());
        }
        for key in ["status_code", "error_data"] {
            if let Some(v) = answer.get(key).filter(|v| !v.is_null()) {
                extensions.insert(key.into(), v.clone());
            }
        }
        extensions
    };
    match answer
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        Some(Value::Object(e)) => return Some(Value::Object(e.clone())),
        Some(Value::String(message)) => {
            return Some(json!({"message": message, "extensions": envelope()}));
        }
        Some(other) => return Some(json!({"message": other.to_string()})),
        None => {}
    }
    if envelope_code.is_some() || envelope_message.is_some() {
        let message = envelope_message.cloned().unwrap_or(Value::Null);
        return Some(json!({"message": message, "extensions": envelope()}));
    }
    None
}

/// The wait a rate-limit error names: `retry_in_seconds` (Monday, in `extensions` or its
/// `error_data`), else "reset in N seconds" in the message (Monday's complexity budget), else
/// one second.
fn wait_of(error: &Value) -> std::time::Duration {
    let field = [
        "/extensions/retry_in_seconds",
        "/extensions/error_data/retry_in_seconds",
    ]
    .iter()
    .find_map(|p| error.pointer(p).and_then(Value::as_f64));
    let in_message = || {
        let message = error.get("message").and_then(Value::as_str)?;
        let lower = message.to_ascii_lowercase();
        let rest = &lower[lower.find("reset in ")? + "reset in ".len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<f64>().ok()
    };
    field
        .or_else(in_message)
        .filter(|s| s.is_finite() && *s >= 0.0)
        // A day is longer than any budget window; a bigger number is a broken answer.
        .map(|s| std::time::Duration::from_secs_f64(s.min(86_400.0)))
        .unwrap_or(std::time::Duration::from_secs(1))
}

/// Runs `query` with `variables` and returns its `data`. `idempotent` says whether the core may
/// send it twice (a query yes, a mutation no).
pub async fn query(
    session: &mut Session,
    url: Url,
    query: &str,
    variables: Value,
    idempotent: bool,
) -> Result<Value, Error> {
    let body = json!({"query": query, "variables": variables});
    loop {
        let req = ProviderRequest::json(Method::POST, url.clone(), &body).idempotent(idempotent);
        let mut answer = session.json(req).await?;
        let Some(error) = first_error(&answer) else {
            return match answer.get_mut("data").map(Value::take) {
                Some(data) if !data.is_null() => Ok(data),
                _ => Err(super::transport::bad_answer(
                    session.platform(),
                    "no data and no errors",
                )),
            };
        };
        let status = status_of(&error);
        if status == StatusCode::UNAUTHORIZED {
            session.rejected().await?;
            continue;
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(rate_limited(session.platform(), wait_of(&error)));
        }
        let body = json!({"errors": [error]}).to_string();
        return Err(rejection(
            session.platform(),
            status,
            &HeaderMap::new(),
            body.as_bytes(),
            session.scrubber(),
        ));
    }
}

/// The params of the raw GraphQL operation (`<platform>.graphql_query`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuery {
    query: String,
    variables: Option<Map<String, Value>>,
}

impl Params for RawQuery {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::text(
                "query",
                "The GraphQL document; pass values through variables, never inside it.",
                100_000,
            )
            .required(),
            Field::any_object("variables", "Values for the document's variables."),
        ])
    }
}

/// Raw GraphQL against the platform's endpoint (its base URL). Registered as a write because
/// the document may be a mutation; a query is retried like any read, a mutation never.
pub async fn raw_query(mut s: Session, p: RawQuery) -> Result<Page, Error> {
    let idempotent = !is_mutation(&p.query);
    let url = s.base().clone();
    let variables = Value::Object(p.variables.unwrap_or_default());
    let data = query(&mut s, url, &p.query, variables, idempotent).await?;
    Ok(Page::one(data))
}

/// Whether a GraphQL document holds a mutation or subscription: a top-level (brace depth 0)
/// `mutation`/`subscription` keyword, ignoring comments and strings. Used to decide whether a
/// raw query may be retried; when unsure it says yes, which only means no retry.
pub fn is_mutation(document: &str) -> bool {
    let mut depth = 0usize;
    let mut chars = document.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, depth: usize| -> bool {
        let hit = depth == 0 && matches!(word.as_str(), "mutation" | "subscription");
        word.clear();
        hit
    };
    while let Some(c) = chars.next() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if flush(&mut word, depth) {
            return true;
        }
        match c {
            '#' => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                // Plain or block string: skip to the closing quote(s), honouring escapes.
                let block = chars.peek() == Some(&'"') && {
                    let mut probe = chars.clone();
                    probe.next();
                    probe.peek() == Some(&'"')
                };
                if block {
                    chars.next();
                    chars.next();
                    let mut quotes = 0;
                    for n in chars.by_ref() {
                        quotes = if n == '"' { quotes + 1 } else { 0 };
                        if quotes == 3 {
                            break;
                        }
                    }
                } else {
                    let mut escaped = false;
                    for n in chars.by_ref() {
                        match (escaped, n) {
                            (false, '\\') => escaped = true,
                            (false, '"') => break,
                            _ => escaped = false,
                        }
                    }
                }
            }
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    flush(&mut word, depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_not_mutations() {
        assert!(!is_mutation("{ user { name } }"));
        assert!(!is_mutation(
            "query Q($id: String!) { transcript(id: $id) { id } }"
        ));
        assert!(!is_mutation(
            "query { transcripts(keyword: \"mutation\") { id } } # mutation"
        ));
        assert!(!is_mutation(
            "query { a(x: \"\"\" mutation \"\"\") { mutation } }"
        ));
    }

    #[test]
    fn mutations_and_subscriptions_are_found() {
        assert!(is_mutation(
            "mutation { deleteTranscript(id: \"1\") { id } }"
        ));
        assert!(is_mutation(
            "query A { a } mutation B($x: String) { b(x: $x) { id } }"
        ));
        assert!(is_mutation("subscription { s }"));
        assert!(is_mutation("# comment\nmutation"));
    }

    #[test]
    fn mondays_error_shapes_are_errors_with_their_status_and_wait() {
        let legacy = json!({
            "error_code": "ComplexityException",
            "status_code": 429,
            "error_message": "Complexity budget exhausted, query cost 30001 budget remaining 19986 out of 1000000 reset in 3 seconds",
            "error_data": {},
            "errors": ["Complexity budget exhausted, query cost 30001 budget remaining 19986 out of 1000000 reset in 3 seconds"],
            "account_id": 1
        });
        let e = first_error(&legacy).unwrap();
        assert_eq!(status_of(&e), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(wait_of(&e), std::time::Duration::from_secs(3));

        let envelope = json!({"error_code": "InvalidBoardIdException", "status_code": 404,
            "error_message": "Board not found", "error_data": {}});
        let e = first_error(&envelope).unwrap();
        assert_eq!(status_of(&e), StatusCode::NOT_FOUND);
        assert_eq!(e["extensions"]["code"], "InvalidBoardIdException");

        let current = json!({"errors": [{"message": "Complexity budget exhausted", "extensions": {
            "code": "COMPLEXITY_BUDGET_EXHAUSTED", "retry_in_seconds": 60, "status_code": 429}}]});
        let e = first_error(&current).unwrap();
        assert_eq!(status_of(&e), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(wait_of(&e), std::time::Duration::from_secs(60));

        assert_eq!(first_error(&json!({"data": {"me": {"id": "1"}}})), None);
    }

    #[test]
    fn a_status_code_of_200_on_an_error_falls_back_to_its_code() {
        let e = json!({"message": "invalid value", "extensions": {"code": "ColumnValueException", "status_code": 200}});
        assert_eq!(status_of(&e), StatusCode::BAD_REQUEST);
        let e = json!({"message": "no", "extensions": {"code": "UserUnauthorizedException", "status_code": 403}});
        assert_eq!(status_of(&e), StatusCode::FORBIDDEN);
        assert_eq!(wait_of(&e), std::time::Duration::from_secs(1));
    }

    #[test]
    fn graphql_error_codes_read_as_statuses() {
        let e = |v: Value| status_of(&v);
        assert_eq!(
            e(json!({"extensions": {"status": 404}})),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            e(json!({"extensions": {"code": "UNAUTHENTICATED"}})),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            e(json!({"code": "too_many_requests"})),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            e(json!({"message": "Cannot query field"})),
            StatusCode::BAD_REQUEST
        );
    }
}
